"""R4's required bindings are checked on every write, through real HTTP: a code outside its value set is 422."""

from __future__ import annotations

import pytest
from kit.samples import observation

# What these tests check is the types and their codes, not whether each reference's target exists.
SERVER_SETTINGS = {"allow_dangling_references": True}


def code_issues(response) -> list[dict]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert {i["code"] for i in body["issue"]} == {"code-invalid"}
    return body["issue"]


def expressions(response) -> list[str]:
    """One expression an issue, sorted (the check walks R4's table, not the order of the JSON)."""
    found = code_issues(response)
    assert all(len(i["expression"]) == 1 for i in found)
    return sorted(i["expression"][0] for i in found)


def valid_patient() -> dict:
    """A Patient with a valid code in each kind of bound element it has: its own, a backbone's, datatypes'."""
    return {
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Marie</div>"},
        "identifier": [{"use": "official", "system": "urn:oid:1.2.250.1.213.1.4.8", "value": "1234"}],
        "name": [{"use": "official", "family": "Martin"}, {"use": "maiden", "family": "Durand"}],
        "telecom": [{"system": "phone", "value": "0102030405", "use": "mobile"},
                    {"system": "email", "value": "m@x.fr"}],
        "gender": "female",
        "address": [{"use": "home", "type": "physical", "city": "Guéret"}],
        "contact": [{"gender": "male", "telecom": [{"system": "fax", "value": "0102"}], "name": {"use": "usual"}}],
        "communication": [{"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "fr"}]}}],
        "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
    }


def test_patient_gender_outside_its_value_set_is_422(server):
    response = server.post("Patient", {**valid_patient(), "gender": "femme"})
    found = code_issues(response)
    assert [i["expression"] for i in found] == [["Patient.gender"]]
    assert "femme" in found[0]["diagnostics"] and "administrative-gender" in found[0]["diagnostics"]
    assert server.store.stats()["resources"] == 0


def test_observation_status_bogus_is_422(server):
    response = server.post("Observation", {**observation(), "status": "bogus"})
    assert expressions(response) == ["Observation.status"]
    assert server.store.stats()["resources"] == 0


def test_a_valid_resource_with_every_kind_of_bound_element_passes(server):
    assert server.post("Patient", valid_patient()).status_code == 201, "the Patient"
    obs = {
        **observation(),
        "valueQuantity": {"value": 5, "comparator": "<", "system": "http://unitsofmeasure.org", "code": "kg"},
        "component": [{"code": {"text": "a"}, "valueQuantity": {"value": 1, "comparator": ">="}},
                      {"code": {"text": "b"}, "valueString": "any text"}],
        "contained": [{"resourceType": "Patient", "id": "c1", "gender": "unknown"}],
    }
    created = server.post("Observation", obs)
    assert created.status_code == 201, created.text
    clinical = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]}
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "clinicalStatus": clinical,
                 "onsetAge": {"value": 40, "comparator": ">=", "unit": "a"}}
    created = server.post("Condition", condition)
    assert created.status_code == 201, created.text


def test_a_codeable_concept_outside_its_value_set_is_422(server):
    clinical = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "actif"}]}
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}, "clinicalStatus": clinical}
    assert expressions(server.post("Condition", condition)) == ["Condition.clinicalStatus"]


def test_a_datatype_binding_is_caught(server):
    patient = valid_patient()
    patient["telecom"][0]["system"] = "fax2"
    patient["contact"][0]["name"]["use"] = "nick"
    found = expressions(server.post("Patient", patient))
    assert found == ["Patient.contact[0].name.use", "Patient.telecom[0].system"]


def test_one_issue_per_bad_code(server):
    obs = {**observation(), "status": "bogus",
           "component": [{"code": {"text": "a"}, "valueQuantity": {"value": 1, "comparator": "~"}},
                         {"code": {"text": "b"}, "valueQuantity": {"value": 1, "comparator": "=="}}]}
    assert expressions(server.post("Observation", obs)) == [
        "Observation.component[0].valueQuantity.comparator", "Observation.component[1].valueQuantity.comparator",
        "Observation.status"]


def test_update_and_patch_are_checked_too(server):
    assert server.put("Patient/p1", {**valid_patient(), "id": "p1"}).status_code == 201
    assert expressions(server.put("Patient/p1", {**valid_patient(), "id": "p1", "gender": "F"})) == ["Patient.gender"]
    patched = server.patch("Patient/p1", [{"op": "replace", "path": "/gender", "value": "femme"}])
    assert expressions(patched) == ["Patient.gender"]
    assert server.get("Patient/p1").json()["gender"] == "female"


def test_a_contained_resource_is_checked(server):
    obs = {**observation(), "contained": [{"resourceType": "Patient", "id": "c1", "gender": "femme"}]}
    assert expressions(server.post("Observation", obs)) == ["Observation.contained[0].gender"]


def test_a_transaction_entry_names_its_place_in_the_bundle(sqlite_server):
    server = sqlite_server  # a transaction needs a store that can make it all-or-nothing
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": "urn:uuid:6b1a6d62-1f0e-4c2a-9d55-0d6f4a1c2b11", "resource": valid_patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**observation(patient="urn:uuid:6b1a6d62-1f0e-4c2a-9d55-0d6f4a1c2b11"), "status": "bogus"},
         "request": {"method": "POST", "url": "Observation"}},
    ]}
    assert expressions(server.post("", bundle)) == ["Bundle.entry[1].resource.status"]
    assert server.store.stats()["resources"] == 0


def test_extensions_are_not_walked(server):
    # An extension's value is bound by the extension's own definition, not by the element it extends.
    ext = {"url": "http://example.org/fhir/StructureDefinition/old-phone", "valueContactPoint": {"system": "fax2"}}
    response = server.post("Patient", {**valid_patient(), "extension": [ext], "_gender": {"extension": [ext]}})
    assert response.status_code == 201, response.text


def detected_issue(status: str) -> dict:
    return {"resourceType": "DetectedIssue", "status": status, "patient": {"reference": "Patient/p1"}}


@pytest.mark.parametrize("status", ["registered", "amended", "preliminary", "cancelled", "unknown"])
def test_detected_issue_status_takes_r4_observation_status(server, status):
    # R4 binds DetectedIssue.status to observation-status; the npm package the table comes from had R5's
    # detectedissue-status, which has neither registered nor amended.
    response = server.post("DetectedIssue", detected_issue(status))
    assert response.status_code == 201, response.text


def test_detected_issue_status_of_r5_only_is_422(server):
    assert expressions(server.post("DetectedIssue", detected_issue("mitigated"))) == ["DetectedIssue.status"]


def test_evidence_variable_group_measure_is_checked(server):
    # R4's EvidenceVariable.characteristic.groupMeasure (the package had R5's characteristic, without it).
    body = {"resourceType": "EvidenceVariable", "status": "draft",
            "characteristic": [{"definitionCanonical": "http://example.org/Group/g", "groupMeasure": "mode"}]}
    assert expressions(server.post("EvidenceVariable", body)) == ["EvidenceVariable.characteristic[0].groupMeasure"]
    body["characteristic"][0]["groupMeasure"] = "median"
    assert server.post("EvidenceVariable", body).status_code == 201
