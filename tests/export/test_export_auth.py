"""$export and bundles with authentication on: files for their requester only, entries decided one by one."""

from __future__ import annotations

import time

import pytest

from tests.access.authkit import AuthServer, sqlite_store_fixture  # noqa: F401 (fixture)

ASYNC = {"Prefer": "respond-async"}


@pytest.fixture
def live(sqlite_store):
    server = AuthServer(sqlite_store, scheduler=True)
    yield server
    scheduler = server.app.extensions.get("relais_scheduler")
    if scheduler is not None:
        scheduler.shutdown(wait=True)
    server.close()


def wait(live, url: str, token: str, deadline_s: float = 30.0):
    end = time.monotonic() + deadline_s
    while True:
        response = live.http.get(url, headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 202 or time.monotonic() > end:
            return response
        time.sleep(0.05)


def test_only_the_requesting_client_may_poll_download_or_cancel(live):
    owner = live.client_token("system/*.cruds")
    other = live.client_token("system/*.cruds")
    assert live.request("PUT", "Patient/a1", owner, json={"resourceType": "Patient", "id": "a1"}).status_code == 201
    kick_off = live.request("GET", "$export", owner, headers=ASYNC)
    assert kick_off.status_code == 202, kick_off.text
    status_url = kick_off.headers["Content-Location"]
    path = status_url.removeprefix(live.base)
    assert live.request("GET", path, other).status_code == 403
    assert live.request("GET", path).status_code == 401
    response = wait(live, status_url, owner)
    assert response.status_code == 200
    manifest = response.json()
    assert manifest["requiresAccessToken"] is True
    file_path = manifest["output"][0]["url"].removeprefix(live.base)
    assert live.request("GET", file_path, other).status_code == 403
    assert live.request("GET", file_path).status_code == 401
    download = live.request("GET", file_path, owner)
    assert download.status_code == 200
    assert '"id":"a1"' in download.text
    assert live.request("DELETE", path, other).status_code == 403
    assert live.request("DELETE", path, owner).status_code == 202


def test_bundle_entries_are_decided_one_by_one(live):
    reader = live.client_token("system/*.rs")
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "POST", "url": "Patient"}, "resource": {"resourceType": "Patient"}},
        {"request": {"method": "GET", "url": "Patient?_id=x"}},
    ]}
    response = live.request("POST", "", reader, json=batch)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses == ["403 Forbidden", "200 OK"]
    transaction = {**batch, "type": "transaction"}
    refused = live.request("POST", "", reader, json=transaction)
    assert refused.status_code == 403
    assert live.store.history("Patient").total == 0  # (AuditEvents of the refusals may be stored meanwhile)
