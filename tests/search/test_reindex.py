"""A custom SearchParameter posted to the server: new resources are searchable at once, existing ones after $reindex."""

from __future__ import annotations

import os
import time
import uuid

import pytest
import requests
from kit.live import serve
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server
from kit.stores import make_store

from fhir_server import reindex
from fhir_server.export import jobs
from fhir_server.store import open_store
from tests.access.authkit import AuthServer

COLOUR_URL = "http://relais.example/fhir/StructureDefinition/favourite-colour"
SEARCH_PARAMETER = {
    "resourceType": "SearchParameter",
    "url": "http://relais.example/fhir/SearchParameter/patient-favourite-colour",
    "name": "favourite-colour",
    "status": "active",
    "description": "The colour a patient says they prefer (a test of custom parameters)",
    "code": "favourite-colour",
    "base": ["Patient"],
    "type": "token",
    "expression": f"Patient.extension.where(url = '{COLOUR_URL}').value",
}


def patient(colour: str) -> dict:
    return {"resourceType": "Patient", "extension": [{"url": COLOUR_URL, "valueCode": colour}]}


def ids(server, query: str) -> set[str]:
    bundle = server.get(query).json()
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e.get("search", {}).get("mode") == "match"}


@pytest.fixture
def reindexing(store):
    """The app with its scheduler running: it runs the $reindex jobs."""
    live = serve(store, scheduler=True)
    yield live
    live.app.extensions["relais_scheduler"].shutdown(wait=True)
    live.close()


def wait(live, url: str, deadline_s: float = 30.0, **kw) -> requests.Response:
    """Poll a status URL until it stops answering 202 (or the deadline passes)."""
    end = time.monotonic() + deadline_s
    while True:
        response = live.http.get(url, **kw)
        if response.status_code != 202 or time.monotonic() > end:
            return response
        time.sleep(0.05)


def kick_off(live, query: str = "", **kw) -> str:
    response = live.http.post(live.url(f"$reindex{query}"), **kw)
    assert response.status_code == 202, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    return response.headers["Content-Location"]


def test_custom_search_parameter_then_reindex(reindexing):
    server = reindexing
    # The registry is per process: a code of its own keeps this run independent of earlier ones.
    code = f"colour-{uuid.uuid4().hex[:8]}"
    before = server.post("Patient", patient("blue")).json()["id"]
    assert server.post("SearchParameter", {**SEARCH_PARAMETER, "code": code, "name": code}).status_code == 201
    after = server.post("Patient", patient("blue")).json()["id"]
    server.post("Patient", patient("green"))
    # Written after the definition: indexed at once. Written before: not yet.
    assert ids(server, f"Patient?{code}=blue") == {after}
    status_url = kick_off(server, "?_type=Patient")
    assert status_url.startswith(f"{server.base}/$reindex-status/")
    r = wait(server, status_url)
    assert r.status_code == 200 and "Patient 3" in r.json()["issue"][0]["diagnostics"]
    assert ids(server, f"Patient?{code}=blue") == {before, after}
    assert server.get(f"Patient/{before}").json()["meta"]["versionId"] == "1"  # no new version
    assert server.post("$reindex?_type=Unicorn", {}).status_code == 404


def test_about_two_hundred_patients_in_pages_with_progress_then_cancel(tmp_path):
    """190 Patients outlasted gunicorn's timeout as one request: now pages of a job, followed by its status URL."""
    store = make_store("sqlite", tmp_path)
    first = serve(store)  # no scheduler: the job waits, its status says so
    try:
        code = f"colour-{uuid.uuid4().hex[:8]}"
        bundle = {"resourceType": "Bundle", "type": "transaction",
                  "entry": [{"resource": patient("blue"), "request": {"method": "POST", "url": "Patient"}}
                            for _ in range(190)]}
        assert first.post("", bundle).status_code == 200
        first.post("SearchParameter", {**SEARCH_PARAMETER, "code": code, "name": code})
        status_url = kick_off(first, "?_type=Patient,Observation")
        waiting = first.http.get(status_url)
        assert waiting.status_code == 202 and waiting.headers["X-Progress"] == "accepted: 0 resources reindexed"
        job_id = status_url.rsplit("/", 1)[1]
        # as a scheduler's tick would, in pages of 50: the cursor and the counts are saved after each page
        assert reindex.run_pending(store, page=50) == 1
        done = first.http.get(status_url)
        assert done.status_code == 200
        assert done.json()["issue"][0]["diagnostics"] == "reindexed 190 resources: Patient 190"
        assert reindex.get(store, job_id)["cursor"] == {"type": 2, "after": None}
        assert len(ids(first, f"Patient?{code}=blue&_count=500")) == 190
        assert first.http.delete(status_url).status_code == 202
        assert first.http.get(status_url).status_code == 404
        assert first.http.delete(status_url).status_code == 404
        # cancelled before it runs: no process ever runs it
        waiting_url = kick_off(first)
        assert first.http.delete(waiting_url).status_code == 202
        assert reindex.run_pending(store) == 0
    finally:
        first.close()


def test_a_job_whose_process_died_goes_on_from_its_cursor(tmp_path):
    store = make_store("sqlite", tmp_path)
    writer = serve(store)
    code = f"colour-{uuid.uuid4().hex[:8]}"
    try:
        stored = sorted(writer.post("Patient", patient("red")).json()["id"] for _ in range(3))
        writer.post("SearchParameter", {**SEARCH_PARAMETER, "code": code, "name": code})
    finally:
        writer.close()
    job = reindex.create(store, ["Patient"], owner=None)
    # As a process that claimed it, did its first page (one Patient) and died leaves it: lease expired.
    claimed = jobs.claim(store, "dead-worker", -1, reindex.TABLES)
    claimed.update(cursor={"type": 0, "after": stored[0]}, counts={"Patient": 1}, reindexed=1)
    jobs.save(store, claimed, reindex.TABLES)
    live = serve(store, scheduler=True)
    try:
        response = wait(live, f"{live.base}/$reindex-status/{job['id']}")
        assert response.status_code == 200
        assert response.json()["issue"][0]["diagnostics"] == "reindexed 3 resources: Patient 3"
        assert jobs.get(store, job["id"], reindex.TABLES)["attempt"] == 2
        # resumed from the cursor, not from scratch: the Patient before it was left as the dead process left it
        assert ids(live, f"Patient?{code}=red") == set(stored[1:])
    finally:
        live.app.extensions["relais_scheduler"].shutdown(wait=True)
        live.close()


def test_another_server_process_loads_stored_search_parameters(tmp_path):
    """A definition stored by one process is searchable in another (as in another gunicorn worker)."""
    code = f"colour-{uuid.uuid4().hex[:8]}"
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    first = serve(open_store(url))
    try:
        first.post("SearchParameter", {**SEARCH_PARAMETER, "code": code, "name": code})
        pid = first.post("Patient", patient("red")).json()["id"]
    finally:
        first.close()
    port = free_port()
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_AUTH": "off", "RELAIS_SCHEDULER": "off"}
    proc = spawn_relais(env, port)
    try:
        bundle = requests.get(f"http://127.0.0.1:{port}/fhir/Patient?{code}=red").json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [pid]
    finally:
        stop_server(proc)


def test_only_system_scopes_may_reindex(tmp_path):
    live = AuthServer(make_store("sqlite", tmp_path))
    try:
        for scopes in ("user/*.cruds", "patient/*.cruds", "system/*.rs", "system/Observation.cu user/*.cruds"):
            token = live.client_token(scopes, **({"patient": "p1"} if scopes.startswith("patient") else {}))
            refused = live.request("POST", "$reindex?_type=Patient", token)
            assert refused.status_code == 403, scopes
            assert refused.json()["resourceType"] == "OperationOutcome"
        assert live.request("POST", "$reindex").status_code == 401
        patients_only = live.client_token("system/Patient.cu")
        accepted = live.request("POST", "$reindex?_type=Patient", patients_only)
        assert accepted.status_code == 202
        path = accepted.headers["Content-Location"].removeprefix(live.base)
        assert live.request("POST", "$reindex", patients_only).status_code == 403  # every type: system/*.cu
        assert live.request("GET", path, patients_only).status_code == 202  # waits: no scheduler here
        assert live.request("GET", path, live.client_token("user/*.cruds")).status_code == 403
        assert live.request("GET", path).status_code == 401
        assert live.request("DELETE", path, live.client_token("system/Observation.cu")).status_code == 403
        assert live.request("DELETE", path, live.client_token("system/*.cruds")).status_code == 202
    finally:
        live.close()
