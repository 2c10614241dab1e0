"""The default rule set on both sides of every threshold and window edge, over a real store's history."""

from __future__ import annotations

import pytest
from triagekit import blood_pressure, fall, goal, measure

from fhir_server import write
from fhir_server.actor import SERVER
from rules.engine import evaluate
from rules.facts import StoreFacts
from rules.loader import load_directory

RULES = load_directory()
T0 = "2026-11-20T08:00:00Z"


def _store(store, *resources: dict) -> list[dict]:
    changes = [write.Change(write.CREATE, r["resourceType"], resource=r) for r in resources]
    return [result.version.resource for result in write.write(store, changes, SERVER, dangling=True)]


def fired(store, resource: dict, *history: dict) -> dict[str, str]:
    """rule id -> priority of the default rules that fire on ``resource`` stored after ``history``."""
    _store(store, *history)
    [stored] = _store(store, resource)
    return {f.rule.id: f.priority for f in evaluate(RULES, stored, StoreFacts(store))}


def findings(store, resource: dict, rule: str) -> list:
    [stored] = _store(store, resource)
    [firing] = [f for f in evaluate(RULES, stored, StoreFacts(store)) if f.rule.id == rule]
    return list(firing.findings)


@pytest.mark.parametrize("systolic, diastolic, expected", [
    (180, 100, {"hypertensive-crisis": "urgent"}), (179, 119, {}), (150, 120, {"hypertensive-crisis": "urgent"}),
    (179.9, 119.9, {}), (90, 60, {"severe-hypotension": "urgent"}), (91, 60, {}),
])
def test_blood_pressure(store, systolic, diastolic, expected):
    assert fired(store, blood_pressure(systolic, diastolic)) == expected


@pytest.mark.parametrize("value, unit, expected", [
    (69.9, "mg/dL", "urgent"), (70, "mg/dL", None), (54, "mg/dL", "urgent"), (53.9, "mg/dL", "stat"),
    (3.8, "mmol/L", "urgent"), (3.9, "mmol/L", None), (3.0, "mmol/L", "urgent"), (2.9, "mmol/L", "stat"),
    (0.699, "g/L", "urgent"), (0.7, "g/L", None),  # grams per litre convert to mg/dL
])
def test_hypoglycaemia(store, value, unit, expected):
    assert fired(store, measure("2339-0", value, unit)).get("hypoglycaemia") == expected


@pytest.mark.parametrize("value, unit, expected", [
    (250, "mg/dL", None), (250.1, "mg/dL", "urgent"), (600, "mg/dL", "urgent"), (601, "mg/dL", "asap"),
    (13.9, "mmol/L", None), (14, "mmol/L", "urgent"), (33.4, "mmol/L", "asap"),
])
def test_hyperglycaemia(store, value, unit, expected):
    assert fired(store, measure("15074-8", value, unit)).get("hyperglycaemia") == expected


@pytest.mark.parametrize("code, value, unit, rule, expected", [
    ("2708-6", 91, "%", "low-spo2", "urgent"), ("2708-6", 92, "%", "low-spo2", None),
    ("59408-5", 90.5, "%", "low-spo2", "urgent"),
    ("8867-4", 131, "/min", "tachycardia", "urgent"), ("8867-4", 130, "/min", "tachycardia", None),
    ("8867-4", 40, "/min", "bradycardia", "urgent"), ("8867-4", 41, "/min", "bradycardia", None),
    ("8310-5", 38.0, "Cel", "fever", None), ("8310-5", 38.1, "Cel", "fever", "routine"),
    ("8310-5", 39.0, "Cel", "fever", "routine"), ("8310-5", 39.1, "Cel", "fever", "urgent"),
    ("8310-5", 102.2, "[degF]", "fever", "routine"),  # 39.0 °C
    ("8310-5", 35.0, "Cel", "hypothermia", "urgent"), ("8310-5", 35.1, "Cel", "hypothermia", None),
])
def test_single_measures(store, code, value, unit, rule, expected):
    assert fired(store, measure(code, value, unit)).get(rule) == expected


def test_spo2_follows_the_patients_own_target_when_a_clinician_set_one(store):
    _store(store, goal("p1", "2708-6", low=88, high=92))
    assert fired(store, measure("2708-6", 88, "%")).get("low-spo2") is None
    assert fired(store, measure("2708-6", 87, "%")).get("low-spo2") == "urgent"
    [finding] = findings(store, measure("2708-6", 85, "%"), "low-spo2")
    assert finding.threshold.startswith("< 88 %") and "seuil personnalisé, Goal/" in finding.threshold
    # another patient keeps the default
    assert fired(store, measure("2708-6", 91, "%", patient="p2")).get("low-spo2") == "urgent"


def test_a_goal_that_is_not_active_changes_nothing(store):
    _store(store, {**goal("p1", "2708-6", low=88, high=92), "lifecycleStatus": "cancelled"})
    assert fired(store, measure("2708-6", 90, "%")).get("low-spo2") == "urgent"


@pytest.mark.parametrize("earlier_at, earlier, now, expected", [
    ("2026-11-17T08:00:00Z", 70.0, 72.1, True),  # exactly 3 days before: inside the window
    ("2026-11-17T07:59:59Z", 70.0, 72.1, False),  # one second earlier: outside
    ("2026-11-18T08:00:00Z", 70.0, 72.0, False),  # +2.0 kg is not more than 2 kg
    ("2026-11-18T08:00:00Z", 70.0, 72.01, True),
    ("2026-11-18T08:00:00Z", 74.0, 72.0, False),  # a loss
])
def test_heart_failure_weight_gain_window(store, earlier_at, earlier, now, expected):
    history = measure("29463-7", earlier, "kg", at=earlier_at)
    assert ("heart-failure-weight-gain" in fired(store, measure("29463-7", now, "kg", at=T0), history)) == expected


def test_weight_gain_compares_with_the_lowest_weight_of_the_window_in_any_unit(store):
    history = [measure("29463-7", 71.5, "kg", at="2026-11-18T08:00:00Z"),
               measure("29463-7", 70000, "g", at="2026-11-19T08:00:00Z")]
    now = _with(measure("29463-7", 72.5, "kg", at=T0), store, history)
    [finding] = findings(store, now, "heart-failure-weight-gain")
    assert finding.observed == "+2.5 kg en 3 j"


def _with(resource: dict, store, history: list[dict]) -> dict:
    _store(store, *history)
    return resource


@pytest.mark.parametrize("first_at, expected", [
    ("2026-11-13T08:00:00Z", "asap"),  # exactly 7 days before
    ("2026-11-13T07:59:59Z", "urgent"),  # one second more: a single fall in the window
    ("2026-11-19T20:00:00Z", "asap"),
])
def test_a_fall_and_repeated_falls(store, first_at, expected):
    assert fired(store, fall(at=T0), fall(at=first_at))["fall"] == expected


def test_a_fall_of_another_patient_does_not_count(store):
    assert fired(store, fall(at=T0), fall(patient="p2", at="2026-11-19T08:00:00Z"))["fall"] == "urgent"


def test_an_entered_in_error_measure_fires_nothing(store):
    assert fired(store, {**measure("2339-0", 40, "mg/dL"), "status": "entered-in-error"}) == {}


def test_a_measure_without_a_patient_fires_nothing(store):
    body = measure("2339-0", 40, "mg/dL")
    body.pop("subject")
    assert fired(store, body) == {}


def test_a_blood_pressure_goal_moves_both_the_crisis_and_the_hypotension_thresholds(store):
    _store(store, goal("p1", "8480-6", low=100, high=160, unit="mm[Hg]"))
    assert fired(store, blood_pressure(160, 90)) == {}
    assert fired(store, blood_pressure(161, 90)) == {"hypertensive-crisis": "urgent"}
    assert fired(store, blood_pressure(100, 60)) == {}
    assert fired(store, blood_pressure(99, 60)) == {"severe-hypotension": "urgent"}
    assert fired(store, blood_pressure(150, 120)) == {"hypertensive-crisis": "urgent"}  # diastolic keeps 120
