"""Patient matching for every feed (mappers/patients.py), with payloads alone: INS first, then the sender's
registered identifier, then the Relais id; an unknown patient is a provisional (PROV) Patient with its origin."""

from __future__ import annotations

import pytest

from fhir_server import codes, write
from fhir_server.resources import validate
from mappers import patients
from mappers.partner import Problem

ORIGIN = patients.Origin("telemonitoring", "acme-client", "batch-7")
INS = "248017512345612"


def test_an_ins_is_found_in_every_fr_core_ins_system_and_a_new_patient_is_provisional():
    found = patients.match({"ins": INS}, ORIGIN, None)
    assert found.by == "ins"
    change = found.change
    assert change is not None and change.action == write.CREATE and change.condition is not None
    assert found.reference == f"Patient/{change.id}"
    patient = change.resource
    validate(patient, "Patient")
    assert patient["identifier"][0]["system"] == codes.INS_NIR and patient["identifier"][0]["value"] == INS
    assert patient["identifier"][0]["type"]["coding"][0]["code"] == "INS-NIR"
    status = patient["extension"][0]
    assert status["url"] == codes.IDENTITY_RELIABILITY
    assert status["extension"][0] == {"url": "identityStatus", "valueCoding": {
        "system": codes.IDENTITY_STATUS_SYSTEM, "code": "PROV", "display": "Identité provisoire"}}
    # whoever resolves it sees where it came from
    assert patient["meta"]["source"] == "urn:relais:feed:telemonitoring:acme-client"
    assert "acme-client" in patient["meta"]["tag"][0]["display"] and "batch-7" in patient["meta"]["tag"][0]["display"]


def test_the_same_ins_always_gives_the_same_patient_id_so_racing_feeds_make_one():
    first = patients.match({"ins": INS}, ORIGIN, None)
    again = patients.match({"ins": INS}, patients.Origin("report", "someone-else", "sms-1"), None)
    assert first.reference == again.reference
    assert patients.match({"ins": "248017512345699"}, ORIGIN, None).reference != first.reference
    assert INS not in first.reference  # the INS does not show in URLs


def test_a_nia_gets_the_nia_system_and_corsican_departments_are_ins_too():
    nia = patients.match({"ins": "748017512345612"}, ORIGIN, None).change.resource  # type: ignore[union-attr]
    assert nia["identifier"][0]["system"] == codes.INS_NIA
    assert patients.match({"ins": "180052A12345612"}, ORIGIN, None).by == "ins"


def test_ins_comes_first_then_identifier_then_id():
    both = patients.match({"id": "p1", "identifier": {"system": "urn:acme:patients", "value": "A-1"}, "ins": INS},
                          ORIGIN, ("urn:acme:patients",))
    assert both.by == "ins"
    assert [i["system"] for i in both.change.resource["identifier"]] == [codes.INS_NIR, "urn:acme:patients"]
    by_identifier = patients.match({"id": "p1", "identifier": {"system": "urn:acme:patients", "value": "A-1"}},
                                   ORIGIN, ("urn:acme:patients",))
    assert by_identifier.by == "identifier"
    assert by_identifier.change.resource["identifier"] == [{"system": "urn:acme:patients", "value": "A-1"}]
    by_id = patients.match({"id": "p1"}, ORIGIN, ())
    assert (by_id.by, by_id.reference, by_id.change) == ("id", "Patient/p1", None)


def test_an_identifier_in_an_ins_system_is_an_ins():
    found = patients.match({"identifier": {"system": codes.INS_NIR_TEST, "value": INS}}, ORIGIN, ())
    assert found.by == "ins" and found.reference == patients.match({"ins": INS}, ORIGIN, None).reference


@pytest.mark.parametrize(("spec", "registered", "where", "reason"), [
    ({"identifier": {"system": "urn:other", "value": "1"}}, ("urn:acme:patients",), "patient.identifier.system",
     patients.UNREGISTERED_SYSTEM),
    ({"identifier": {"system": "urn:other", "value": "1"}}, (), "patient.identifier.system",
     patients.UNREGISTERED_SYSTEM),
    ({"ins": "12345"}, None, "patient.ins", "invalid"),
    ({"id": "not an id!"}, None, "patient.id", "invalid"),
    ({}, None, "patient", "invalid"),
])
def test_what_cannot_name_a_patient_is_refused_naming_the_field(spec, registered, where, reason):
    with pytest.raises(Problem) as refused:
        patients.match(spec, ORIGIN, registered)
    assert (refused.value.location, refused.value.reason) == (where, reason)


def test_without_authentication_any_identifier_system_is_taken():
    assert patients.match({"identifier": {"system": "urn:other", "value": "1"}}, ORIGIN, None).by == "identifier"


def test_with_references_copies_the_tree_and_resolves_only_references():
    from fhir_server.resources import with_references

    observation = {"resourceType": "Observation", "subject": {"reference": "Patient/provisional"},
                   "device": {"reference": "Device/d1"}, "note": [{"text": "Patient/provisional"}],
                   "component": [{"valueQuantity": {"value": 1.5}}],
                   "performer": [{"reference": "Patient/provisional"}]}
    renamed = {"Patient/provisional": "Patient/p1"}
    copied = with_references(observation, lambda reference: renamed.get(reference, reference))
    assert copied["subject"] == {"reference": "Patient/p1"} and copied["performer"] == [{"reference": "Patient/p1"}]
    assert copied["device"] == {"reference": "Device/d1"} and copied["note"] == [{"text": "Patient/provisional"}]
    assert observation["subject"] == {"reference": "Patient/provisional"}  # the mapped change stays as mapped
    copied["component"][0]["valueQuantity"]["value"] = 2
    assert observation["component"][0]["valueQuantity"]["value"] == 1.5
