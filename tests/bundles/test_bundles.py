"""POST /fhir with batch and transaction Bundles, against the served app on both backends."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path

import pytest
from kit.live import serve
from kit.samples import observation
from kit.shared import SHARED

from fhir_server.resources import is_supported

SYNTHEA = sorted((SHARED / "fixtures" / "synthea").glob("*.json"))


def synthea(path: Path) -> dict:
    """A Synthea transaction as it is, less the entries of types this server does not serve (yet)."""
    bundle = json.loads(path.read_text())
    bundle["entry"] = [e for e in bundle["entry"] if is_supported(e["resource"]["resourceType"])]
    return bundle


def patient(identifier: str = "A1", family: str = "Martin") -> dict:
    return {"resourceType": "Patient", "identifier": [{"system": "urn:test", "value": identifier}],
            "name": [{"family": family}]}


def entry(method: str, url: str, resource: dict | None = None, full_url: str | None = None, **request) -> dict:
    item: dict = {"request": {"method": method, "url": url, **request}}
    if resource is not None:
        item["resource"] = resource
    if full_url is not None:
        item["fullUrl"] = full_url
    return item


def bundle(kind: str, entries: list[dict]) -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


def snapshot(store) -> tuple:
    """What a failed transaction must leave untouched: counts and the history (the outbox also gets audit events)."""
    stats = store.stats()
    page = store.history(count=1000)
    return stats["resources"], stats["versions"], [(v.resource_type, v.id, v.version) for v in page.entries]


def transactional(server) -> bool:
    return server.store.supports_transactions


# ---- transactions ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", SYNTHEA, ids=lambda p: p.name[:20])
def test_synthea_transaction_resolves_every_urn_reference(server, path):
    sent = synthea(path)
    response = server.post("", sent)
    if not transactional(server):
        assert response.status_code == 400
        assert "replica set" in response.json()["issue"][0]["diagnostics"]
        assert server.store.stats()["resources"] == 0
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert len(body["entry"]) == len(sent["entry"])
    locations = {}
    for request_entry, result in zip(sent["entry"], body["entry"], strict=True):
        assert result["response"]["status"] == "201 Created"
        assert result["response"]["etag"] == 'W/"1"'
        assert result["response"]["lastModified"].endswith("Z")
        rtype, id, _, version = result["response"]["location"].split("/")
        assert (rtype, version) == (request_entry["resource"]["resourceType"], "1")
        locations[request_entry["fullUrl"]] = f"{rtype}/{id}"
    assert server.store.stats()["resources"] == len(sent["entry"])
    for reference in locations.values():
        stored = server.get(reference).json()
        assert "urn:uuid:" not in json.dumps(stored), reference
    # Every Observation now points at the Patient created by the same Bundle.
    patient_full_url = next((e["fullUrl"] for e in sent["entry"] if e["resource"]["resourceType"] == "Patient"), None)
    for full_url, reference in locations.items():
        original = next(e["resource"] for e in sent["entry"] if e["fullUrl"] == full_url)
        if original["resourceType"] == "Observation" and patient_full_url:
            assert server.get(reference).json()["subject"]["reference"] == locations[patient_full_url]


def test_invalid_50th_entry_leaves_the_store_as_it_was(server):
    server.post("Patient", patient("before"))
    before = snapshot(server.store)
    entries = [entry("POST", "Observation", observation(float(i)), f"urn:uuid:{uuid.uuid4()}") for i in range(60)]
    entries[49]["resource"]["effectiveDateTime"] = "not-a-date"
    response = server.post("", bundle("transaction", entries))
    assert response.status_code in (400, 422)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    if transactional(server):
        assert response.status_code == 422
        assert any(p.startswith("Bundle.entry[49]") for i in outcome["issue"] for p in i.get("expression", [])), outcome
        assert "Bundle.entry[49]" in outcome["issue"][0]["diagnostics"]
    assert snapshot(server.store) == before


def test_invalid_entry_of_a_transaction_rolls_back_earlier_writes(sqlite_server):
    entries = [entry("PUT", "Patient/keep", {**patient("K"), "id": "keep"}),
               entry("DELETE", "Patient/other"),
               entry("POST", "Patient", {"resourceType": "Patient", "gender": 12})]
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 422
    assert response.json()["issue"][0]["expression"][0].startswith("Bundle.entry[2]")
    assert sqlite_server.get("Patient/keep").status_code == 404


def test_conditional_references_resolve_to_the_one_match(sqlite_server):
    created = sqlite_server.post("Patient", patient("P-1")).json()
    obs = observation(80, patient="Patient?identifier=urn:test|P-1")
    response = sqlite_server.post("", bundle("transaction", [entry("POST", "Observation", obs)]))
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"]
    stored = sqlite_server.get(location.split("/_history")[0]).json()
    assert stored["subject"]["reference"] == f"Patient/{created['id']}"


@pytest.mark.parametrize("copies", [0, 2])
def test_conditional_reference_matching_zero_or_several_fails(sqlite_server, copies):
    for _ in range(copies):
        sqlite_server.post("Patient", patient("DUP"))
    obs = observation(80, patient="Patient?identifier=urn:test|DUP")
    response = sqlite_server.post("", bundle("transaction", [entry("POST", "Observation", obs)]))
    assert response.status_code == 412
    issue = response.json()["issue"][0]
    assert issue["expression"] == ["Bundle.entry[0].resource.subject.reference"]
    assert ("no" if copies == 0 else "several") in issue["diagnostics"]
    assert sqlite_server.store.stats()["resources"] == copies


def test_if_none_exist_points_references_at_the_existing_resource(sqlite_server):
    existing = sqlite_server.post("Patient", patient("INE")).json()
    full_url = f"urn:uuid:{uuid.uuid4()}"
    entries = [entry("POST", "Patient", patient("INE"), full_url, ifNoneExist="identifier=urn:test|INE"),
               entry("POST", "Observation", observation(70, patient=full_url))]
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 200, response.text
    first, second = response.json()["entry"]
    assert first["response"]["status"] == "200 OK"
    assert first["fullUrl"].endswith(f"/Patient/{existing['id']}")
    obs = sqlite_server.get(second["response"]["location"].split("/_history")[0]).json()
    assert obs["subject"]["reference"] == f"Patient/{existing['id']}"
    assert sqlite_server.get("Patient", params={"identifier": "urn:test|INE"}).json()["total"] == 1


def test_if_match_mismatch_fails_the_whole_transaction(sqlite_server):
    sqlite_server.put("Patient/im", {**patient("IM"), "id": "im"})
    entries = [entry("POST", "Patient", patient("new-one")),
               entry("PUT", "Patient/im", {**patient("IM", "Changed"), "id": "im"}, ifMatch='W/"7"')]
    before = snapshot(sqlite_server.store)
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 412
    assert snapshot(sqlite_server.store) == before
    ok = sqlite_server.post("", bundle("transaction", [entries[1] | {"request": {**entries[1]["request"],
                                                                                    "ifMatch": 'W/"1"'}}]))
    assert ok.status_code == 200
    assert ok.json()["entry"][0]["response"]["etag"] == 'W/"2"'


def test_processing_order_delete_post_put_get(sqlite_server):
    sqlite_server.put("Patient/ord", {**patient("ORD"), "id": "ord"})
    entries = [
        entry("GET", "Patient/ord"),  # listed first, runs last: sees the PUT below
        entry("PUT", "Patient/ord", {**patient("ORD", "Second"), "id": "ord"}),
        entry("POST", "Patient", patient("ONLY")),
        # Runs before the POST: afterwards exactly one Patient has identifier ONLY, the new one.
        entry("DELETE", "Patient?identifier=urn:test|ONLY"),
    ]
    sqlite_server.post("Patient", patient("ONLY"))
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 200, response.text
    got, put, post, delete = response.json()["entry"]
    assert got["resource"]["name"][0]["family"] == "Second"
    assert got["response"]["etag"] == 'W/"2"'
    assert put["response"]["status"] == "200 OK"
    assert post["response"]["status"] == "201 Created"
    assert delete["response"]["status"] == "204 No Content"
    found = sqlite_server.get("Patient", params={"identifier": "urn:test|ONLY"}).json()
    assert found["total"] == 1
    assert post["response"]["location"].startswith(f"Patient/{found['entry'][0]['resource']['id']}/")


def test_patch_entry_with_a_binary_json_patch(sqlite_server):
    sqlite_server.put("Patient/pt", {**patient("PT"), "id": "pt"})
    ops = [{"op": "replace", "path": "/name/0/family", "value": "Patched"}]
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json",
              "data": base64.b64encode(json.dumps(ops).encode()).decode()}
    response = sqlite_server.post("", bundle("transaction", [entry("PATCH", "Patient/pt", binary)]))
    assert response.status_code == 200, response.text
    assert sqlite_server.get("Patient/pt").json()["name"][0]["family"] == "Patched"


@pytest.mark.parametrize("data", ["!!", 5, base64.b64encode(b"not json").decode()])
def test_patch_entry_with_a_bad_binary(sqlite_server, data):
    binary = {"resourceType": "Binary", "contentType": "application/json-patch+json", "data": data}
    response = sqlite_server.post("", bundle("batch", [entry("PATCH", "Patient/pt", binary)]))
    assert response.json()["entry"][0]["response"]["status"] == "400 Bad Request"


def test_representation_when_preferred(sqlite_server):
    response = sqlite_server.post("", bundle("transaction", [entry("POST", "Patient", patient("R"))]),
                                  headers={"Prefer": "return=representation"})
    assert response.json()["entry"][0]["resource"]["identifier"][0]["value"] == "R"


def test_duplicate_target_in_one_transaction_is_refused(sqlite_server):
    entries = [entry("PUT", "Patient/twice", {**patient(), "id": "twice"}), entry("DELETE", "Patient/twice")]
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[1].request.url"]


def test_unresolvable_urn_reference_fails_the_transaction(sqlite_server):
    obs = observation(60, patient="urn:uuid:00000000-0000-0000-0000-000000000000")
    response = sqlite_server.post("", bundle("transaction", [entry("POST", "Observation", obs)]))
    assert response.status_code == 400
    assert response.json()["issue"][0]["expression"] == ["Bundle.entry[0].resource.subject.reference"]


def test_urn_oid_full_urls_are_resolved(sqlite_server):
    oid = "urn:oid:1.2.250.1.999.1"
    entries = [entry("POST", "Patient", patient("OID"), oid), entry("POST", "Observation", observation(1, oid))]
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 200, response.text
    patient_id = response.json()["entry"][0]["response"]["location"].split("/")[1]
    obs_url = response.json()["entry"][1]["response"]["location"].split("/_history")[0]
    assert sqlite_server.get(obs_url).json()["subject"]["reference"] == f"Patient/{patient_id}"


# ---- batches -----------------------------------------------------------------------------------


def test_batch_reports_each_entry_on_its_own(server):
    server.put("Patient/b1", {**patient("B1"), "id": "b1"})
    entries = [
        entry("POST", "Patient", patient("B2")),
        entry("POST", "Observation", {**observation(), "effectiveDateTime": "yesterday"}),
        entry("GET", "Patient/missing"),
        entry("GET", "Patient/b1"),
        entry("PUT", "Unknown/1", {"resourceType": "Unknown"}),
        {"resource": patient("no-request")},
    ]
    response = server.post("", bundle("batch", entries))
    assert response.status_code == 200, response.text
    results = response.json()["entry"]
    assert response.json()["type"] == "batch-response"
    assert [r["response"]["status"] for r in results] == [
        "201 Created", "422 Unprocessable Entity", "404 Not Found", "200 OK", "404 Not Found", "400 Bad Request"]
    invalid = results[1]["response"]["outcome"]
    assert invalid["resourceType"] == "OperationOutcome"
    assert invalid["issue"][0]["expression"][0].startswith("Bundle.entry[1].resource")
    assert results[3]["resource"]["id"] == "b1"
    assert server.store.stats()["resources"] == 2  # b1 and the new B2, nothing of the failed entries


def test_batch_get_honours_if_none_match_and_if_modified_since(server):
    server.put("Patient/c1", {**patient("C1"), "id": "c1"})
    entries = [entry("GET", "Patient/c1", ifNoneMatch='W/"1"'),
               entry("GET", "Patient/c1", ifNoneMatch='W/"0"'),
               entry("GET", "Patient/c1", ifModifiedSince="2999-01-01T00:00:00Z"),
               entry("GET", "Patient/c1", ifModifiedSince="2000-01-01T00:00:00Z"),
               entry("GET", "Patient?identifier=urn:test|C1")]
    results = server.post("", bundle("batch", entries)).json()["entry"]
    assert [r["response"]["status"] for r in results] == ["304 Not Modified", "200 OK", "304 Not Modified", "200 OK",
                                                          "200 OK"]
    assert "resource" not in results[0]
    assert results[4]["resource"]["total"] == 1


def test_batch_if_none_exist_and_if_match(server):
    server.put("Patient/d1", {**patient("D1"), "id": "d1"})
    entries = [entry("POST", "Patient", patient("D1"), ifNoneExist="identifier=urn:test|D1"),
               entry("PUT", "Patient/d1", {**patient("D1", "X"), "id": "d1"}, ifMatch='W/"5"')]
    results = server.post("", bundle("batch", entries)).json()["entry"]
    assert results[0]["response"]["status"] == "200 OK"
    assert results[0]["response"]["etag"] == 'W/"1"'
    assert results[1]["response"]["status"] == "412 Precondition Failed"
    assert server.get("Patient/d1").json()["name"][0]["family"] == "Martin"


# ---- the Bundle itself -------------------------------------------------------------------------


def test_entry_limit(store):
    live = serve(store, max_bundle_entries=3)
    try:
        response = live.post("", bundle("batch", [entry("GET", "Patient/x")] * 4))
        assert response.status_code == 413
        assert "RELAIS_MAX_BUNDLE_ENTRIES" in response.json()["issue"][0]["diagnostics"]
        assert live.post("", bundle("batch", [entry("GET", "Patient/x")] * 3)).status_code == 200
    finally:
        live.close()


@pytest.mark.parametrize("body", [
    {"resourceType": "Patient"},
    {"resourceType": "Bundle", "type": "collection", "entry": []},
    {"resourceType": "Bundle", "type": "batch", "entry": {}},
    [1, 2],
])
def test_not_a_batch_or_transaction(sqlite_server, body):
    response = sqlite_server.post("", body)
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_malformed_json(sqlite_server):
    response = sqlite_server.http.post(sqlite_server.base, data=b"{not json",
                                       headers={"Content-Type": "application/fhir+json"})
    assert response.status_code == 400


def test_capability_statement_lists_batch_and_transaction(sqlite_server):
    codes = [i["code"] for i in sqlite_server.get("metadata").json()["rest"][0]["interaction"]]
    assert {"batch", "transaction", "history-system"} <= set(codes)


def test_failed_read_in_a_transaction_is_reported_in_its_entry(sqlite_server):
    entries = [entry("POST", "Patient", patient("RD")), entry("GET", "Patient/nobody")]
    response = sqlite_server.post("", bundle("transaction", entries))
    assert response.status_code == 200
    created, missing = response.json()["entry"]
    assert created["response"]["status"] == "201 Created"
    assert missing["response"]["status"] == "404 Not Found"
    assert missing["response"]["outcome"]["issue"][0]["code"] == "not-found"
