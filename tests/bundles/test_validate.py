"""POST [type]/$validate and [type]/[id]/$validate, on the served app."""

from __future__ import annotations

import pytest
from kit.samples import observation

from fhir_server.store.base import StoredVersion
from fhir_server.write import now_instant

PROFILE = "http://example.org/fhir/StructureDefinition/strict-patient"


def load_profile(store) -> None:
    """Put a StructureDefinition in the store as a loaded profile would be (StructureDefinition is no REST type)."""
    sd = {
        "resourceType": "StructureDefinition", "id": "strict-patient", "url": PROFILE, "name": "StrictPatient",
        "status": "active", "kind": "resource", "abstract": False, "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient", "derivation": "constraint",
        "differential": {"element": [
            {"id": "Patient.birthDate", "path": "Patient.birthDate", "min": 1},
            {"id": "Patient.name", "path": "Patient.name", "min": 1, "max": "1"},
            {"id": "Patient.contact.name", "path": "Patient.contact.name", "min": 1},
            {"id": "Patient.deceased[x]", "path": "Patient.deceased[x]", "max": "0"},
        ]},
    }
    with store.transaction() as txn:
        txn.put(StoredVersion("StructureDefinition", "strict-patient", 1, now_instant(), "PUT", sd), [])


def issues(response) -> list[dict]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body["issue"]


def errors(response) -> list[dict]:
    return [i for i in issues(response) if i["severity"] in ("error", "fatal")]


def test_valid_resource(server):
    found = issues(server.post("Observation/$validate", observation()))
    assert [i["severity"] for i in found] == ["information"]


def test_invalid_resource_is_200_with_every_path(server):
    body = {**observation(), "effectiveDateTime": "not-a-date", "valueQuantity": {"value": "heavy"}}
    found = errors(server.post("Observation/$validate", body))
    paths = {p for i in found for p in i.get("expression", [])}
    assert "Observation.effectiveDateTime" in paths
    assert "Observation.valueQuantity.value" in paths
    assert server.store.stats()["resources"] == 0  # validating stores nothing


def test_parameters_body_with_mode_update_checks_the_id(server):
    resource = {**observation(), "id": "other"}
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": resource},
                                                              {"name": "mode", "valueCode": "update"}]}
    found = errors(server.post("Observation/o1/$validate", parameters))
    assert found[0]["expression"] == ["Observation.id"]
    resource["id"] = "o1"
    assert errors(server.post("Observation/o1/$validate", parameters)) == []


def test_mode_delete_needs_an_existing_instance(server):
    delete = {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "delete"}]}
    assert errors(server.post("Observation/gone/$validate", delete))[0]["code"] == "not-found"
    server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    server.put("Observation/here", {**observation(), "id": "here"})
    assert errors(server.post("Observation/here/$validate", delete)) == []


def test_loaded_profile_cardinalities(server):
    load_profile(server.store)
    patient = {"resourceType": "Patient", "name": [{"family": "A"}, {"family": "B"}], "contact": [{"gender": "male"}],
               "deceasedBoolean": False}
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient},
                                                              {"name": "profile", "valueUri": PROFILE}]}
    found = errors(server.post("Patient/$validate", parameters))
    paths = sorted(p for i in found for p in i["expression"])
    assert paths == ["Patient.birthDate", "Patient.contact[0].name", "Patient.deceasedBoolean", "Patient.name"]
    good = {"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "name": [{"family": "A"}],
            "birthDate": "1970-01-01"}
    assert errors(server.post("Patient/$validate", good)) == []
    # meta.profile is honoured without the parameter
    assert errors(server.post("Patient/$validate", {**good, "birthDate": None} | {"birthDate": "1970"})) == []
    del good["birthDate"]
    assert [i["expression"] for i in errors(server.post("Patient/$validate", good))] == [["Patient.birthDate"]]


def test_unknown_profile(server):
    found = errors(server.post("Patient/$validate?profile=http://example.org/none", {"resourceType": "Patient"}))
    assert found[0]["code"] == "not-supported"


@pytest.mark.parametrize("path, body, status", [
    ("Observation/$validate", [1], 400),
    ("Nothing/$validate", {"resourceType": "Nothing"}, 404),
    ("Observation/$validate?mode=purge", {"resourceType": "Observation"}, 400),
    ("Observation/$validate", {"resourceType": "Parameters", "parameter": [{"name": "mode", "valueCode": "create"}]},
     400),
])
def test_bad_requests(sqlite_server, path, body, status):
    response = sqlite_server.post(path, body)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"


def test_wrong_type_in_body(sqlite_server):
    found = errors(sqlite_server.post("Observation/$validate", {"resourceType": "Patient"}))
    assert found[0]["expression"] == ["resourceType"]


def test_capability_statement_lists_validate(sqlite_server):
    operations = sqlite_server.get("metadata").json()["rest"][0]["operation"]
    assert {"name": "validate", "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate"} in operations


def test_codes_outside_a_required_binding_are_errors(sqlite_server):
    found = errors(sqlite_server.post("Patient/$validate", {"resourceType": "Patient", "gender": "femme"}))
    assert [(i["code"], i["expression"]) for i in found] == [("code-invalid", ["Patient.gender"])]
    found = errors(sqlite_server.post("Observation/$validate", {**observation(), "status": "bogus"}))
    assert [(i["code"], i["expression"]) for i in found] == [("code-invalid", ["Observation.status"])]
    telecom = {"resourceType": "Patient", "telecom": [{"system": "fax2", "value": "1"}]}
    found = errors(sqlite_server.post("Patient/$validate", telecom))
    assert [(i["code"], i["expression"]) for i in found] == [("code-invalid", ["Patient.telecom[0].system"])]
    assert errors(sqlite_server.post("Patient/$validate", {**telecom, "telecom": [{"system": "fax"}]})) == []


def test_bad_codes_are_reported_beside_structural_errors(sqlite_server):
    body = {**observation(), "status": "bogus", "effectiveDateTime": "not-a-date"}
    found = errors(sqlite_server.post("Observation/$validate", body))
    assert {(i["code"], i["expression"][0]) for i in found} == {
        ("invalid", "Observation.effectiveDateTime"), ("code-invalid", "Observation.status")}
