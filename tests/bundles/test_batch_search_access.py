"""Search entries of a batch under a patient-scoped token: the same answer as REST search, nothing more."""

from __future__ import annotations

import pytest

from tests.access.authkit import AuthServer, observation, sqlite_store_fixture  # noqa: F401 (fixture)


@pytest.fixture(name="live")
def live_fixture(sqlite_store):
    server = AuthServer(sqlite_store)
    admin = server.client_token("system/*.cruds")
    for pid in ("p1", "p2", "p3"):
        put = server.request("PUT", f"Patient/{pid}", admin,
                             json={"resourceType": "Patient", "id": pid,
                                   "generalPractitioner": [{"reference": "Practitioner/gp"}]})
        assert put.status_code in (200, 201), put.text
    gp = server.request("PUT", "Practitioner/gp", admin, json={"resourceType": "Practitioner", "id": "gp"})
    assert gp.status_code in (200, 201), gp.text
    for pid in ("p1", "p2", "p2", "p3"):
        assert server.request("POST", "Observation", admin, json=observation(pid)).status_code == 201
    server.admin = admin
    yield server
    server.close()


def _batch(live: AuthServer, token: str, *urls: str) -> list[dict]:
    bundle = {"resourceType": "Bundle", "type": "batch",
              "entry": [{"request": {"method": "GET", "url": url}} for url in urls]}
    response = live.request("POST", "", token, json=bundle)
    assert response.status_code == 200, response.text
    return response.json()["entry"]


def test_a_batch_search_entry_does_not_leak_the_total(live):
    token = live.client_token("patient/*.rs", patient="p1")
    rest = live.request("GET", "Observation", token).json()
    assert "total" not in rest  # the REST front door hides it from a patient-scoped caller
    entry = _batch(live, token, "Observation")[0]
    assert entry["response"]["status"].startswith("200")
    searchset = entry["resource"]
    assert "total" not in searchset, searchset.get("total")  # 4: every patient's Observations
    assert [e["resource"]["subject"]["reference"] for e in searchset["entry"]] == ["Patient/p1"]
