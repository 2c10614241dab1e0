"""Bulk Data $export against the served app: kick-off, polling, manifest, files, cancel, restart."""

from __future__ import annotations

import json
import time

import pytest
from kit.live import serve
from kit.samples import observation
from kit.stores import make_store

from fhir_server.export import jobs

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def exporting(store, tmp_path, monkeypatch):
    """The app with its scheduler running; export files under tmp_path (a MongoDB store uses ./var/exports)."""
    monkeypatch.chdir(tmp_path)
    live = serve(store, scheduler=True)
    yield live
    stop(live)


def stop(live) -> None:
    """Stop the server and its scheduler (its threads must not outlive the store the fixture closes)."""
    scheduler = live.app.extensions.get("relais_scheduler")
    if scheduler is not None:
        scheduler.shutdown(wait=True)
    live.close()


def wait(live, url: str, deadline_s: float = 30.0):
    """Poll a status URL until it stops answering 202 (or the deadline passes)."""
    end = time.monotonic() + deadline_s
    while True:
        response = live.http.get(url)
        if response.status_code != 202 or time.monotonic() > end:
            return response
        time.sleep(0.05)


def kick_off(live, path: str, **params):
    response = live.get(path, params=params, headers=ASYNC)
    assert response.status_code == 202, response.text
    return response.headers["Content-Location"]


def ndjson(live, url: str) -> list[dict]:
    response = live.http.get(url)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/fhir+ndjson")
    return [json.loads(line) for line in response.text.splitlines()]


def exported(live, manifest: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for item in manifest["output"]:
        lines = ndjson(live, item["url"])
        assert len(lines) == item["count"]
        assert {r["resourceType"] for r in lines} == {item["type"]}
        found.setdefault(item["type"], []).extend(lines)
    return found


def populate(live) -> None:
    for pid in ("p1", "p2", "p3"):
        assert live.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid}).status_code == 201
        for value in (60, 70):
            assert live.post("Observation", observation(value, patient=f"Patient/{pid}")).status_code == 201
    live.put("Practitioner/dr", {"resourceType": "Practitioner", "id": "dr"})
    live.put("Group/g1", {"resourceType": "Group", "id": "g1", "type": "person", "actual": True,
                          "member": [{"entity": {"reference": "Patient/p1"}},
                                     {"entity": {"reference": "Patient/p3"}, "inactive": True}]})


def ids(found: dict[str, list[dict]], rtype: str) -> set[str]:
    return {r["id"] for r in found.get(rtype, [])}


def test_system_export(exporting):
    populate(exporting)
    status_url = kick_off(exporting, "$export", _outputFormat="application/fhir+ndjson")
    response = wait(exporting, status_url)
    assert response.status_code == 200, response.text
    manifest = response.json()
    assert manifest["requiresAccessToken"] is False
    assert manifest["request"].endswith("$export?_outputFormat=application/fhir%2Bndjson")
    assert manifest["transactionTime"].endswith("Z")
    assert manifest["error"] == []
    found = exported(exporting, manifest)
    assert ids(found, "Patient") == {"p1", "p2", "p3"}
    assert len(found["Observation"]) == 6
    assert ids(found, "Practitioner") == {"dr"}
    assert ids(found, "Group") == {"g1"}
    stored = exporting.get("Patient/p2").json()
    assert next(r for r in found["Patient"] if r["id"] == "p2") == stored


def test_type_and_since(exporting):
    populate(exporting)
    since = exporting.get("Group/g1").json()["meta"]["lastUpdated"]  # the last write of populate()
    time.sleep(0.01)  # lastUpdated has millisecond precision: the next writes are strictly later
    exporting.put("Patient/p1", {"resourceType": "Patient", "id": "p1", "gender": "female"})
    exporting.post("Observation", observation(99, patient="Patient/p2"))
    manifest = wait(exporting, kick_off(exporting, "$export", _type="Patient,Observation", _since=since)).json()
    found = exported(exporting, manifest)
    assert set(found) <= {"Patient", "Observation"}
    assert ids(found, "Patient") == {"p1"}
    assert [o["valueQuantity"]["value"] for o in found["Observation"]] == [99]


def test_patient_export_is_the_patient_compartment(exporting):
    populate(exporting)
    found = exported(exporting, wait(exporting, kick_off(exporting, "Patient/$export")).json())
    assert "Practitioner" not in found
    # R4's Patient CompartmentDefinition puts a Group in its members' compartments (Group: member)
    assert ids(found, "Group") == {"g1"}
    assert ids(found, "Patient") == {"p1", "p2", "p3"}
    assert len(found["Observation"]) == 6


def test_group_export_is_its_active_members(exporting):
    populate(exporting)
    found = exported(exporting, wait(exporting, kick_off(exporting, "Group/g1/$export")).json())
    assert ids(found, "Patient") == {"p1"}
    assert {o["subject"]["reference"] for o in found["Observation"]} == {"Patient/p1"}
    assert len(found["Observation"]) == 2


@pytest.mark.parametrize("path, params, headers, status", [
    ("$export", {}, {}, 400),
    ("$export", {"_outputFormat": "text/csv"}, ASYNC, 400),
    ("$export", {"_type": "Nope"}, ASYNC, 400),
    ("Patient/$export", {"_type": "Practitioner"}, ASYNC, 400),
    ("$export", {"_since": "last tuesday"}, ASYNC, 400),
    ("$export", {"_typeFilter": "Patient?gender=male"}, ASYNC, 400),
    ("Group/none/$export", {}, ASYNC, 404),
])
def test_bad_kick_off(sqlite_server, path, params, headers, status):
    response = sqlite_server.get(path, params=params, headers=headers)
    assert response.status_code == status
    assert response.json()["resourceType"] == "OperationOutcome"
    assert list(sqlite_server.store.kv_list(jobs.JOBS)) == []


def test_status_while_waiting_then_resumed_after_restart(tmp_path):
    store = make_store("sqlite", tmp_path)
    first = serve(store)  # no scheduler: the job waits
    try:
        first.put("Patient/r1", {"resourceType": "Patient", "id": "r1"})
        status_url = kick_off(first, "$export")
        waiting = first.http.get(status_url)
        assert waiting.status_code == 202
        assert waiting.headers["X-Progress"].startswith("accepted")
        assert int(waiting.headers["Retry-After"]) > 0
    finally:
        first.close()
    second = serve(store, scheduler=True)
    try:
        response = wait(second, status_url.replace(first.base, second.base))
        assert response.status_code == 200
        # The file URLs were minted for the first server's base URL; the path is the same.
        url = response.json()["output"][0]["url"].replace(first.base, second.base)
        assert [r["id"] for r in ndjson(second, url)] == ["r1"]
    finally:
        stop(second)


def test_job_with_an_expired_lease_is_resumed(tmp_path):
    store = make_store("sqlite", tmp_path)
    store_writer = serve(store)
    store_writer.put("Patient/x1", {"resourceType": "Patient", "id": "x1"})
    store_writer.close()
    job = jobs.create(store, level="system", group=None, types=["Patient"], since=None, request="r",
                      base="http://x/fhir", owner=None, requires_token=False)
    # As a process that claimed it and died would leave it: in progress, lease expired.
    assert jobs.claim(store, "dead-worker", lease_s=-1)["attempt"] == 1
    live = serve(store, scheduler=True)
    try:
        response = wait(live, f"{live.base}/$export-status/{job['id']}")
        assert response.status_code == 200
        assert jobs.get(store, job["id"])["attempt"] == 2
        assert response.json()["output"][0]["count"] == 1
    finally:
        stop(live)


def test_live_lease_is_not_taken(sqlite_server):
    job = jobs.create(sqlite_server.store, level="system", group=None, types=["Patient"], since=None, request="r",
                      base="b", owner=None, requires_token=False)
    assert jobs.claim(sqlite_server.store, "one", lease_s=60)["id"] == job["id"]
    assert jobs.claim(sqlite_server.store, "two", lease_s=60) is None


def test_cancel(exporting):
    populate(exporting)
    status_url = kick_off(exporting, "$export")
    manifest = wait(exporting, status_url).json()
    job_id = status_url.rsplit("/", 1)[1]
    cancelled = exporting.http.delete(status_url)
    assert cancelled.status_code == 202
    assert exporting.http.get(status_url).status_code == 404
    assert exporting.http.get(manifest["output"][0]["url"]).status_code == 404
    assert exporting.http.delete(status_url).status_code == 404
    assert jobs.get(exporting.store, job_id) is None


def test_finished_exports_are_swept(exporting, tmp_path):
    from fhir_server.export.runner import export_dir, sweep

    populate(exporting)
    status_url = kick_off(exporting, "$export")
    response = wait(exporting, status_url)
    assert response.status_code == 200
    assert response.headers["Expires"].endswith("GMT")
    job_id = status_url.rsplit("/", 1)[1]
    directory = export_dir(exporting.store, exporting.app.config["RELAIS"])
    assert (directory / job_id).is_dir()
    assert sweep(exporting.store, directory, keep_s=3600) == []
    assert sweep(exporting.store, directory, keep_s=-1) == [job_id]
    assert not (directory / job_id).exists()
    assert exporting.http.get(status_url).status_code == 404


def test_cancel_before_it_runs(sqlite_server, tmp_path):
    status_url = kick_off(sqlite_server, "$export")
    assert sqlite_server.http.delete(status_url).status_code == 202
    assert sqlite_server.http.get(status_url).status_code == 404
    # A scheduler starting later does not run it.
    assert jobs.claim(sqlite_server.store, "later", 60) is None


def test_only_the_requester_may_poll_or_download(exporting):
    job = jobs.create(exporting.store, level="system", group=None, types=["Patient"], since=None, request="r",
                      base=exporting.base, owner="client-a", requires_token=True)
    status_url = f"{exporting.base}/$export-status/{job['id']}"
    response = exporting.http.get(status_url)
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert exporting.http.get(f"{exporting.base}/$export-file/{job['id']}/Patient-1.ndjson").status_code == 403
    assert exporting.http.delete(status_url).status_code == 403


def test_unknown_job_and_file(sqlite_server):
    assert sqlite_server.get("$export-status/nope").status_code == 404
    status_url = kick_off(sqlite_server, "$export")
    job_id = status_url.rsplit("/", 1)[1]
    assert sqlite_server.get(f"$export-file/{job_id}/..%2Frelais.db").status_code == 404


def test_capability_statement_lists_export(sqlite_server):
    names = {o["name"] for o in sqlite_server.get("metadata").json()["rest"][0]["operation"]}
    assert {"export", "patient-export", "group-export", "validate"} <= names


def test_scan_is_as_of_the_transaction_time(sqlite_server):
    from fhir_server.export.runner import scan

    sqlite_server.put("Patient/t1", {"resourceType": "Patient", "id": "t1", "gender": "male"})
    sqlite_server.put("Patient/t2", {"resourceType": "Patient", "id": "t2"})
    until = sqlite_server.get("Patient/t2").json()["meta"]["lastUpdated"]
    time.sleep(0.01)  # lastUpdated has millisecond precision: the next writes are strictly later
    sqlite_server.put("Patient/t1", {"resourceType": "Patient", "id": "t1", "gender": "female"})
    sqlite_server.delete("Patient/t2")
    sqlite_server.put("Patient/t3", {"resourceType": "Patient", "id": "t3"})
    as_of = {v.id: v.resource.get("gender") for v in scan(sqlite_server.store, "Patient", None, until)}
    assert as_of == {"t1": "male", "t2": None}
    now = {v.id: v.version for v in scan(sqlite_server.store, "Patient", None, "9999")}
    assert now == {"t1": 2, "t3": 1}


def test_decimals_are_exported_as_they_were_sent(exporting):
    body = ('{"resourceType": "Observation", "status": "final", "code": {"text": "weight"},'
            ' "valueQuantity": {"value": 72.400, "unit": "kg"}, "component": [{"code": {"text": "x"},'
            ' "valueQuantity": {"value": 1e2}}, {"code": {"text": "y"}, "valueQuantity": {"value": 0.10}}]}')
    created = exporting.http.post(exporting.url("Observation"), data=body.encode(),
                                  headers={"Content-Type": "application/fhir+json"})
    assert created.status_code == 201, created.text
    manifest = wait(exporting, kick_off(exporting, "$export", _type="Observation")).json()
    lines = exporting.http.get(manifest["output"][0]["url"]).text.splitlines()
    assert len(lines) == 1
    assert '"valueQuantity":{"value":72.400,' in lines[0]
    assert '{"value":1e2}' in lines[0] and '{"value":0.10}' in lines[0]
