"""Eight clients post the same conditional create at the same moment: exactly one resource is created.

A Bundle's ifNoneExist is decided inside the write's transaction, as REST If-None-Exist is; the
entries that reference the conditional entry's fullUrl point at the one resource, created or found.
Real HTTP against the served app, the clients released together by a barrier, several rounds.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from kit.samples import observation

CLIENTS = 8
ROUNDS = 6
INS = "urn:oid:1.2.250.1.213.1.4.8"
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _conditional_patient(value: str) -> dict:
    """A POST entry of a Patient with the INS ``value``, created unless one has it."""
    patient = {"resourceType": "Patient", "identifier": [{"system": INS, "value": value}], "name": [{"family": "Race"}]}
    return {"resource": patient,
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={INS}|{value}"}}


def _transaction(value: str) -> dict:
    full_url = f"urn:uuid:{uuid.uuid4()}"
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": full_url, **_conditional_patient(value)},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation(patient=full_url),
         "request": {"method": "POST", "url": "Observation"}},
    ]}


def _batch(value: str) -> dict:
    return {"resourceType": "Bundle", "type": "batch", "entry": [_conditional_patient(value)]}


def _race(base: str, bodies: list[dict]) -> list[requests.Response]:
    """POST every body at once, one thread (and connection) each, released together."""
    barrier = threading.Barrier(len(bodies))

    def post(body: dict) -> requests.Response:
        with requests.Session() as http:
            http.get(f"{base}/metadata").raise_for_status()  # connected before the start
            barrier.wait(timeout=60)
            return http.post(base, json=body, headers=HEADERS, timeout=120)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def _patients(base: str, value: str) -> list[str]:
    found = requests.get(f"{base}/Patient", params={"identifier": f"{INS}|{value}"}, headers=HEADERS).json()
    return [e["resource"]["id"] for e in found.get("entry", [])]


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_concurrent_conditional_creates_make_one_patient(sqlite_server, kind):
    base = sqlite_server.base
    for round_ in range(ROUNDS):
        value = f"{kind}-{round_}-{uuid.uuid4().hex[:8]}"
        make = _transaction if kind == "transaction" else _batch
        responses = _race(base, [make(value) for _ in range(CLIENTS)])
        failed = [r.text for r in responses if r.status_code != 200]
        assert not failed, failed
        entries = [r.json()["entry"] for r in responses]
        statuses = sorted(e[0]["response"]["status"].split()[0] for e in entries)
        patients = _patients(base, value)
        assert len(patients) == 1, f"round {round_}: {len(patients)} Patients, entry statuses {statuses}"
        assert statuses == ["200"] * (CLIENTS - 1) + ["201"], statuses
        assert {e[0]["fullUrl"].rsplit("/", 1)[1] for e in entries} == set(patients)
        if kind == "transaction":
            subjects = set()
            for e in entries:
                assert e[1]["response"]["status"].startswith("201")
                location = e[1]["response"]["location"].split("/_history")[0]
                subjects.add(requests.get(f"{base}/{location}", headers=HEADERS).json()["subject"]["reference"])
            assert subjects == {f"Patient/{patients[0]}"}
