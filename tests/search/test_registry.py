"""The registry: R4 definitions split per base type, custom SearchParameters at run time."""

from __future__ import annotations

import time

import pytest

from fhir_server.search.extract import index_values
from fhir_server.search.matcher import matches
from fhir_server.search.parser import parse
from fhir_server.search.query import IndexRow
from fhir_server.search.registry import Registry, expression_for, get_registry, split_union


def test_split_union_ignores_bars_in_parens_and_quotes() -> None:
    expr = "(A.value as Quantity) | A.x.where(y='a|b') | B.name"
    assert split_union(expr) == ["(A.value as Quantity)", "A.x.where(y='a|b')", "B.name"]


def test_expression_keeps_only_the_parts_of_the_base() -> None:
    assert expression_for("Patient.name | Practitioner.name", "Practitioner") == "Practitioner.name"
    assert expression_for("(DeviceRequest.code as CodeableConcept) | Condition.code", "DeviceRequest") == (
        "(DeviceRequest.code as CodeableConcept)"
    )
    assert expression_for("Resource.meta.tag", "Observation") == "Observation.meta.tag"


def test_patient_parameters() -> None:
    params = get_registry().params_for("Patient")
    assert params["name"].type == "string"
    assert params["name"].expression == "Patient.name"
    assert params["birthdate"].expression == "Patient.birthDate"
    assert set(params["general-practitioner"].targets) == {"Organization", "Practitioner", "PractitionerRole"}
    for common in ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
        assert common in params
    assert "_text" not in params  # no expression: cannot be indexed


def test_composite_components_resolve_to_kinds() -> None:
    p = get_registry().params_for("Observation")["component-code-value-quantity"]
    assert p.type == "composite"
    assert p.expression == "Observation.component"
    assert [(c.kind, c.expression) for c in p.components] == [("token", "code"), ("quantity", "value.as(Quantity)")]


def test_every_type_of_the_examples_has_parameters() -> None:
    reg = get_registry()
    for rtype in ("Observation", "Patient", "Encounter", "Condition", "MedicationRequest", "Task", "Subscription"):
        assert len(reg.params_for(rtype)) > 6, rtype


def test_loading_is_cheap() -> None:
    # This thread's CPU time: a busy machine, or the live servers and schedulers other tests leave
    # running in this process (process_time counted them), must not fail this; a slow loader must.
    start = time.thread_time()
    reg: Registry = get_registry.__wrapped__()  # a fresh load, bypassing the cache
    loaded = time.thread_time() - start
    for rtype in reg.resource_types():
        reg.params_for(rtype)
    elapsed = time.thread_time() - start
    assert loaded < 0.3
    assert elapsed < 0.6
    assert len(reg.resource_types()) > 130


def test_custom_search_parameter_is_indexed_and_searchable() -> None:
    reg = get_registry()
    made = reg.add(
        {
            "resourceType": "SearchParameter",
            "url": "http://relais.example/SearchParameter/patient-birthplace-city",
            "name": "birthplace-city",
            "status": "active",
            "code": "test-nickname",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.name.where(use='nickname').given",
        }
    )
    assert made[0].name == "test-nickname"
    assert reg.params_for("Patient")["test-nickname"].type == "string"
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"use": "official", "given": ["Marie"]}, {"use": "nickname", "given": ["Mimi"]}],
    }
    rows = [r for r in index_values(patient) if r.param == "test-nickname"]
    assert [(r.code, r.text) for r in rows] == [("mimi", "Mimi")]
    assert matches(parse("Patient", [("test-nickname", "mim")]), patient)
    assert not matches(parse("Patient", [("test-nickname", "mar")]), patient)


def test_custom_search_parameter_is_validated() -> None:
    with pytest.raises(ValueError):
        get_registry().add({"resourceType": "Patient"})
    with pytest.raises(ValueError):
        get_registry().add({"resourceType": "SearchParameter", "code": "x", "base": ["Patient"], "type": "special"})
    with pytest.raises(ValueError):
        get_registry().add(
            {
                "resourceType": "SearchParameter",
                "code": "x",
                "base": ["Patient"],
                "type": "token",
                "expression": "Observation.code",
            }
        )


def test_a_failing_expression_loses_its_values_not_the_write() -> None:
    get_registry().add(
        {
            "resourceType": "SearchParameter",
            "code": "test-only-given",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.name.given.single()",  # FHIRPath raises when there are several
        }
    )
    one = {"resourceType": "Patient", "id": "a", "name": [{"given": ["Anne"]}]}
    two = {"resourceType": "Patient", "id": "b", "name": [{"given": ["Anne", "Marie"]}]}
    assert [r.code for r in index_values(one) if r.param == "test-only-given"] == ["anne"]
    rows = index_values(two)
    assert not [r for r in rows if r.param == "test-only-given"]
    assert any(r.param == "given" for r in rows)


def test_a_parameter_added_after_extraction_was_compiled_gets_rows_at_once() -> None:
    """The registry tells the extraction cache (its listener) that a type's definitions changed."""
    linkage = {"resourceType": "Linkage", "id": "c", "active": True}
    assert not [r for r in index_values(linkage) if r.param == "test-only-active"]  # compiled now
    get_registry().add(
        {
            "resourceType": "SearchParameter",
            "code": "test-only-active",
            "base": ["Linkage"],
            "type": "token",
            "expression": "Linkage.active",
        }
    )
    rows = [r for r in index_values(linkage) if r.param == "test-only-active"]
    assert rows == [IndexRow("test-only-active", "token", None, "true")]


def test_listeners_hear_the_base_types_of_each_added_parameter() -> None:
    registry = Registry([])
    heard: list[list[str]] = []
    registry.on_change(lambda bases: heard.append(list(bases)))
    registry.add({"resourceType": "SearchParameter", "code": "x", "base": ["Patient", "Group"], "type": "string",
                  "expression": "Patient.name | Group.name"})
    assert heard == [["Patient", "Group"]]
