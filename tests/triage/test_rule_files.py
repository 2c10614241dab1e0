"""Rule files: checked when loaded, a broken one named with its path, line and reason; relais rules check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app import create_app
from fhir_server.config import load_config
from rules.loader import RuleFileError, load_directory, load_text

GOOD = """\
rules:
  - id: weight-up
    version: 2
    trigger: Observation?code=http://loinc.org|29463-7
    class: chronic
    priority: routine
    message: "Prise de poids"
    when:
      - trend: {code: http://loinc.org|29463-7, rise: 2, unit: kg, within: 3d}
    sources: ["ESC HFA"]
"""


def _error(text: str) -> RuleFileError:
    with pytest.raises(RuleFileError) as raised:
        load_text(text, "mine.rules.yaml")
    return raised.value


def test_a_good_file_gives_its_rules():
    [rule] = load_text(GOOD)
    assert (rule.id, rule.version, rule.priority, rule.rule_class) == ("weight-up", "2", "routine", "chronic")
    assert rule.query.resource_type == "Observation" and rule.conditions[0].window_s == 3 * 86400


@pytest.mark.parametrize("change, line, reason", [
    (("priority: routine", "priority: soon"), 6, "priority must be one of routine, urgent, asap, stat"),
    (("class: chronic", "class: sometimes"), 5, "class must be one of acute, chronic"),
    (("within: 3d", "within: three days"), 9, "not a duration"),
    (("code=http://loinc.org|29463-7\n", "colour=blue\n"), 4, "colour"),
    (("Observation?code", "Task?code"), 4, "no rule on Task"),
    (("rise: 2", "rise: two"), 9, "'rise' must be a number"),
    (("trend: {", "tendency: {"), 9, "unknown condition kind 'tendency'"),
    (('sources: ["ESC HFA"]', "sources: []"), 10, "sources must be a non-empty list"),
    (("    version: 2\n", ""), 2, "'version' is required"),
    (("message: \"Prise de poids\"", "message: \"Prise de poids\"\n    colour: red"), 8, "unknown key 'colour'"),
    (("- id: weight-up", "- id: Weight Up"), 2, "id must be lower-case"),
    (("    class: chronic\n", "    class: chronic\n    class: acute\n"), 6, "given twice"),
    (("when:\n", "when: [\n"), 9, "not valid YAML"),
])
def test_a_broken_file_is_refused_with_its_line_and_reason(change, line, reason):
    error = _error(GOOD.replace(*change))
    assert error.path == "mine.rules.yaml" and error.line == line and reason in error.reason
    assert str(error).startswith(f"mine.rules.yaml:{line}: ")


def test_an_escalation_must_raise_the_priority():
    text = GOOD + """    escalate:
      - priority: routine
        when: [{value: {above: 100, unit: kg}}]
"""
    assert "raises the priority above routine" in _error(text).reason


def test_the_default_rule_set_loads_and_every_rule_has_sources():
    rules = load_directory()
    assert {"hypertensive-crisis", "severe-hypotension", "hypoglycaemia", "hyperglycaemia", "low-spo2",
            "heart-failure-weight-gain", "tachycardia", "bradycardia", "fever", "hypothermia", "fall",
            "news2"} <= {r.id for r in rules.rules}
    assert all(rule.sources for rule in rules.rules)


def test_a_broken_rule_file_stops_the_start(tmp_path: Path):
    (tmp_path / "a.rules.yaml").write_text(GOOD)
    (tmp_path / "b.rules.yaml").write_text(GOOD.replace("weight-up", "other").replace("unit: kg", "unit: [kg]"))
    settings = {"auth": False, "scheduler": False, "store": f"sqlite:///{tmp_path / 'r.db'}",
                "rules_dir": str(tmp_path)}
    with pytest.raises(RuleFileError) as raised:
        create_app(load_config(environ={}, **settings))
    assert raised.value.path.endswith("b.rules.yaml") and raised.value.line == 9
    (tmp_path / "b.rules.yaml").write_text(GOOD)  # the same id in two files
    with pytest.raises(RuleFileError) as raised:
        create_app(load_config(environ={}, **settings))
    assert "already defined at" in raised.value.reason and raised.value.path.endswith("b.rules.yaml")


def _relais(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("relais")), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def test_relais_rules_check_names_the_problem_and_fails(tmp_path: Path):
    good, bad = tmp_path / "good.rules.yaml", tmp_path / "bad.rules.yaml"
    good.write_text(GOOD)
    bad.write_text(GOOD.replace("class: chronic", "class: sometimes"))
    ok = _relais("rules", "check", str(good))
    assert ok.returncode == 0 and "weight-up v2" in ok.stdout and "1 rule(s) in 1 file(s): ok" in ok.stdout
    refused = _relais("rules", "check", str(bad))
    assert refused.returncode == 1 and f"{bad}:5: rule 'weight-up': class must be one of" in refused.stderr
    default = _relais("rules", "check")
    assert default.returncode == 0 and "hypertensive-crisis v1" in default.stdout


def test_relais_serve_does_not_start_on_a_broken_rule_file(tmp_path: Path):
    import os

    (tmp_path / "bad.rules.yaml").write_text(GOOD.replace("within: 3d", "within: soon"))
    env = {**os.environ, "RELAIS_RULES_DIR": str(tmp_path), "RELAIS_AUTH": "off",
           "RELAIS_STORE": f"sqlite:///{tmp_path / 'r.db'}"}
    from kit.ports import free_port

    started = _relais("serve", "--port", str(free_port()), env=env)
    assert started.returncode == 2
    assert f"relais: {tmp_path / 'bad.rules.yaml'}:9: trend condition: window 'soon'" in started.stderr


def test_a_resource_carrying_none_of_the_codes_the_triggers_need_is_passed_over():
    rules = load_directory()
    def coded(code: str) -> dict:
        return {"resourceType": "Observation", "code": {"coding": [{"system": "http://loinc.org", "code": code}]}}

    weight, cholesterol = coded("29463-7"), coded("2093-3")
    systolic_in_a_panel = {"resourceType": "Observation", "code": {"text": "BP"},
                           "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}}]}
    assert rules.may_trigger(weight) and rules.may_trigger(systolic_in_a_panel)
    assert not rules.may_trigger(cholesterol) and not rules.may_trigger({"resourceType": "Patient"})
    assert rules.may_trigger({"resourceType": "Communication"})  # complaint triggers take any Communication
