"""One Patient compartment, R4's CompartmentDefinition: what access control, $everything and export share."""

from __future__ import annotations

import json

import pytest
from kit.shared import SHARED

from fhir_server import compartment
from fhir_server.resources import SUPPORTED_TYPES
from fhir_server.search import matches, parse_criteria
from fhir_server.search.registry import get_registry
from tests.access.authkit import AuthServer, observation, sqlite_store_fixture  # noqa: F401 (fixture)

SPEC = SHARED / "fhir-r4" / "compartmentdefinition-patient.json"


def _spec_params() -> dict[str, tuple[str, ...]]:
    definition = json.loads(SPEC.read_text(encoding="utf-8"))
    assert definition["url"] == "http://hl7.org/fhir/CompartmentDefinition/patient"
    return {r["code"]: tuple(r.get("param", ())) for r in definition["resource"]}


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_every_supported_type_follows_the_compartment_definition(resource_type):
    expected = _spec_params().get(resource_type, ())
    assert compartment.params(resource_type) == expected
    assert compartment.has_compartment(resource_type) == (bool(expected) or resource_type == "Patient")
    for name in expected:  # each is a reference search parameter of the type: membership is a search
        param = get_registry().get(resource_type, name)
        assert param is not None and param.type == "reference", (resource_type, name)


def test_the_shipped_copy_is_the_specification():
    assert compartment.definition() == json.loads(SPEC.read_text(encoding="utf-8"))


PEOPLE = [
    {"resourceType": "Observation", "id": "o1", "status": "final", "code": {"text": "x"},
     "subject": {"reference": "Patient/p2"}, "performer": [{"reference": "Patient/p1"}]},
    {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p2"},
     "asserter": {"reference": "http://elsewhere/fhir/Patient/p1/_history/2"}},
    {"resourceType": "Communication", "id": "m1", "status": "completed", "sender": {"reference": "Patient/p1"}},
    {"resourceType": "Group", "id": "g1", "type": "person", "actual": True,
     "member": [{"entity": {"reference": "Patient/p1"}}]},
    {"resourceType": "Observation", "id": "o2", "status": "final", "code": {"text": "x"},
     "subject": {"reference": "Group/p1"}},
    {"resourceType": "Task", "id": "t1", "status": "ready", "intent": "order", "focus": {"reference": "Patient/p1"}},
    {"resourceType": "Device", "id": "d1", "patient": {"reference": "Patient/p1"}},
    {"resourceType": "Patient", "id": "p3", "link": [{"other": {"reference": "Patient/p1"}, "type": "seealso"}]},
]


@pytest.mark.parametrize("resource", PEOPLE, ids=lambda r: f"{r['resourceType']}/{r['id']}")
def test_membership_is_what_a_search_on_the_parameters_finds(resource):
    rtype = resource["resourceType"]
    found = any(matches(parse_criteria(f"{rtype}?{name}=Patient/p1"), resource) for name in compartment.params(rtype))
    assert compartment.in_compartment(rtype, resource, "p1") == found
    assert ("p1" in compartment.patient_ids(rtype, resource)) == found
    assert compartment.in_compartment("Patient", {"resourceType": "Patient", "id": "p1"}, "p1")

