"""tools/required_bindings.py on small made-up definitions: how value sets expand, what is left out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "required_bindings", Path(__file__).resolve().parents[2] / "tools" / "required_bindings.py")
generator = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(generator)

CS = "http://example.org/cs"


def terminology() -> generator.Terminology:
    return generator.Terminology([
        {"resourceType": "CodeSystem", "url": CS, "content": "complete",
         "concept": [{"code": "a", "concept": [{"code": "a1"}]}, {"code": "b"}]},
        {"resourceType": "CodeSystem", "url": "http://example.org/fragment", "content": "fragment",
         "concept": [{"code": "x"}]},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/all", "compose": {"include": [{"system": CS}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/some",
         "compose": {"include": [{"system": CS, "concept": [{"code": "b"}]},
                                 {"system": "http://other", "concept": [{"code": "z"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/but-a1",
         "compose": {"include": [{"valueSet": ["http://example.org/vs/all|1.0"]}],
                     "exclude": [{"system": CS, "concept": [{"code": "a1"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/filter",
         "compose": {"include": [{"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "a"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/fragment",
         "compose": {"include": [{"system": "http://example.org/fragment"}]}},
    ])


def test_value_sets_expand_from_their_code_systems():
    t = terminology()
    assert t.expand("http://example.org/vs/all") == {CS: ["a", "a1", "b"]}  # nested concepts too
    assert t.expand("http://example.org/vs/some|4.0.1") == {CS: ["b"], "http://other": ["z"]}
    assert t.expand("http://example.org/vs/but-a1") == {CS: ["a", "b"]}


@pytest.mark.parametrize("url", ["http://example.org/vs/filter", "http://example.org/vs/fragment",
                                 "http://example.org/vs/unknown"])
def test_what_cannot_be_enumerated_is_said(url):
    with pytest.raises(generator.NotEnumerable):
        terminology().expand(url)


def test_type_elements_spell_choices_as_in_json_and_skip_extensions():
    sd = {"snapshot": {"element": [
        {"path": "Thing", "isModifier": False},
        {"path": "Thing.status", "isModifier": True, "type": [{"code": "code"}],
         "binding": {"strength": "required", "valueSet": "http://example.org/vs/all|4.0.1"}},
        {"path": "Thing.value[x]", "isModifier": False, "type": [{"code": "Quantity"}, {"code": "string"}]},
        {"path": "Thing.part", "isModifier": False, "type": [{"code": "BackboneElement"}]},
        {"path": "Thing.part.part", "isModifier": False, "contentReference": "#Thing.part"},
        {"path": "Thing.extension", "isModifier": False, "type": [{"code": "Extension"}]},
        {"path": "Thing.added", "type": [{"code": "code"}],  # no isModifier: not R4's (a Medplum addition)
         "binding": {"strength": "required", "valueSet": "http://example.org/vs/all"}},
    ]}}
    assert generator.type_elements(sd) == {
        "status": {"type": "code", "valueSet": "http://example.org/vs/all"},
        "valueQuantity": {"type": "Quantity"}, "valueString": {"type": "string"},
        "part": {"type": "BackboneElement"}, "part.part": {"ref": "part"},
    }


def test_the_committed_table_is_compact():
    table = Path(__file__).resolve().parents[2] / "fhir_server" / "required-bindings.json"
    assert table.stat().st_size < 500_000
    assert json.loads(table.read_text())["source"]["generator"] == "tools/required_bindings.py"
