"""A reference to a local resource that does not exist is refused (422 naming the element), as HAPI does
by default; RELAIS_ALLOW_DANGLING_REFERENCES=on stores it. Checked inside the write's transaction."""

from __future__ import annotations

import uuid

import pytest
from kit.live import serve
from kit.samples import observation


def _outcome_paths(response) -> list[str]:
    return [path for item in response.json()["issue"] for path in item.get("expression", [])]


def test_a_reference_to_a_missing_resource_is_refused_naming_the_element(server):
    refused = server.post("Observation", observation(patient="Patient/does-not-exist"))
    assert refused.status_code == 422, refused.text
    assert _outcome_paths(refused) == ["Observation.subject"]
    assert "Patient/does-not-exist" in refused.json()["issue"][0]["diagnostics"]
    performer = {**observation(patient="Patient/p1"), "performer": [{"reference": "Practitioner/nobody"}]}
    assert server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code == 201
    refused = server.post("Observation", performer)
    assert refused.status_code == 422 and _outcome_paths(refused) == ["Observation.performer[0]"]
    assert server.post("Observation", observation(patient="Patient/p1")).status_code == 201
    assert server.get("Observation").json()["total"] == 1


def test_contained_absolute_and_logical_references_are_not_checked(server):
    contained = {**observation(patient="#p"), "contained": [{"resourceType": "Patient", "id": "p"}]}
    assert server.post("Observation", contained).status_code == 201, "a contained reference"
    elsewhere = observation(patient="https://other.example/fhir/Patient/42")
    assert server.post("Observation", elsewhere).status_code == 201, "another server's resource"
    logical = {**observation(), "subject": {"identifier": {"system": "urn:test", "value": "x"}}}
    assert server.post("Observation", logical).status_code == 201, "a logical reference"


def test_a_reference_to_a_deleted_resource_is_refused_but_not_to_its_version(server):
    assert server.put("Patient/gone", {"resourceType": "Patient", "id": "gone"}).status_code == 201
    assert server.delete("Patient/gone").status_code == 204
    assert server.post("Observation", observation(patient="Patient/gone")).status_code == 422
    assert server.post("Observation", observation(patient="Patient/gone/_history/1")).status_code == 201


def test_an_update_and_a_conditional_create_are_checked_too(server):
    assert server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code == 201
    created = server.post("Observation", observation(patient="Patient/p1")).json()
    moved = server.put(f"Observation/{created['id']}", {**created, "subject": {"reference": "Patient/p9"}})
    assert moved.status_code == 422 and _outcome_paths(moved) == ["Observation.subject"]
    conditional = server.post("Observation", observation(patient="Patient/p9"),
                              headers={"If-None-Exist": "code=http://loinc.org|1234-5"})
    assert conditional.status_code == 422


def _transaction(entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def test_a_transaction_may_reference_what_it_creates_but_nothing_missing(server):
    if not server.store.supports_transactions:
        pytest.skip("transactions need a store that makes them atomic")
    full_url = f"urn:uuid:{uuid.uuid4()}"
    ok = server.post("", _transaction([
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation(patient=full_url),
         "request": {"method": "POST", "url": "Observation"}},
        {"fullUrl": full_url, "resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation(patient="Patient/p7"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient", "id": "p7"}, "request": {"method": "PUT", "url": "Patient/p7"}},
    ]))
    assert ok.status_code == 200, ok.text
    refused = server.post("", _transaction([
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
        {"resource": observation(patient="Patient/missing"), "request": {"method": "POST", "url": "Observation"}},
    ]))
    assert refused.status_code == 422
    assert _outcome_paths(refused) == ["Bundle.entry[1].resource.subject"]
    deleted = server.post("", _transaction([
        {"request": {"method": "DELETE", "url": "Patient/p7"}},
        {"resource": observation(patient="Patient/p7"), "request": {"method": "POST", "url": "Observation"}},
    ]))
    assert deleted.status_code == 422
    assert server.get("Patient/p7").status_code == 200, "nothing of a refused transaction is stored"


def test_a_batch_entry_with_a_missing_reference_fails_alone(server):
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": observation(patient="Patient/missing"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
    ]}
    entries = server.post("", batch).json()["entry"]
    assert entries[0]["response"]["status"].startswith("422")
    assert entries[0]["response"]["outcome"]["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject"]
    assert entries[1]["response"]["status"].startswith("201")


def test_the_setting_allows_dangling_references(store):
    live = serve(store, allow_dangling_references=True)
    try:
        assert live.post("Observation", observation(patient="Patient/does-not-exist")).status_code == 201
    finally:
        live.close()
