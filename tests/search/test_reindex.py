"""A custom SearchParameter posted to the server: new resources are searchable at once, existing ones after $reindex."""

from __future__ import annotations

import os
import uuid

import requests
from kit.live import serve
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server

from fhir_server.store import open_store

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


def test_custom_search_parameter_then_reindex(server):
    # The registry is per process: a code of its own keeps this run independent of earlier ones.
    code = f"colour-{uuid.uuid4().hex[:8]}"
    before = server.post("Patient", patient("blue")).json()["id"]
    assert server.post("SearchParameter", {**SEARCH_PARAMETER, "code": code, "name": code}).status_code == 201
    after = server.post("Patient", patient("blue")).json()["id"]
    server.post("Patient", patient("green"))
    # Written after the definition: indexed at once. Written before: not yet.
    assert ids(server, f"Patient?{code}=blue") == {after}
    r = server.post("$reindex?_type=Patient", {})
    assert r.status_code == 200 and "Patient 3" in r.json()["issue"][0]["diagnostics"]
    assert ids(server, f"Patient?{code}=blue") == {before, after}
    assert server.get(f"Patient/{before}").json()["meta"]["versionId"] == "1"  # no new version
    assert server.post("$reindex?_type=Unicorn", {}).status_code == 404


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
