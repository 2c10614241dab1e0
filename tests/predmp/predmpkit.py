"""The pre-DMP's test kit: the real app with authentication on, its national-record stand-in, and the callers."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from kit.outbox import drain
from kit.stores import make_store

from predmp.state import export_state
from tests.access.authkit import AuthServer
from tests.predmp import records
from tests.predmp.recipient import Recipient

SETTINGS = {"dmp_timeout_s": 1.0}


@dataclass
class Platform:
    live: AuthServer
    recipient: Recipient
    admin: str  # a backend client with every system scope
    doctor: str  # a client registered for Practitioner gp1 (--practitioner gp1)
    coordinator: str  # a client that may ask for a pre-DMP but is no practitioner

    def put(self, resource: dict, token: str | None = None):
        return self.live.request("PUT", f"{resource['resourceType']}/{resource['id']}", token or self.admin,
                                 json=resource)

    def seed(self, resources: list[dict]) -> None:
        for resource in resources:
            response = self.put(resource)
            assert response.status_code in (200, 201), response.text

    def build(self, patient: str = "p1", token: str | None = None):
        return self.live.request("POST", f"Patient/{patient}/$pre-dmp", token or self.coordinator)

    def validate(self, docref: str, token: str | None = None):
        return self.live.request("POST", f"DocumentReference/{docref}/$validate-pre-dmp", token or self.doctor)

    def read(self, path: str) -> dict:
        response = self.live.request("GET", path, self.admin)
        assert response.status_code == 200, response.text
        return response.json()

    def document(self, docref: dict) -> dict:
        """The FHIR document a DocumentReference's Binary holds."""
        binary = self.read(docref["content"][0]["attachment"]["url"])
        return json.loads(base64.b64decode(binary["data"]))

    def state(self, docref_id: str) -> dict:
        return export_state(self.read(f"DocumentReference/{docref_id}"))

    def drain(self) -> int:
        return drain(self.live.app)

    def export_until(self, docref_id: str, wanted: Callable[[dict], bool], timeout_s: float = 30) -> dict:
        """Run the outbox (as the scheduler would) until the document's export state is ``wanted``."""
        deadline = time.monotonic() + timeout_s
        while True:
            self.drain()
            state = self.state(docref_id)
            if wanted(state) or time.monotonic() > deadline:
                return state
            time.sleep(0.2)  # a failed job is released with backoff: poll until it is claimable again

    def search(self, query: str) -> list[dict]:
        response = self.live.request("GET", query, self.admin)
        assert response.status_code == 200, response.text
        return [e["resource"] for e in response.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"]


def platform_for(store, recipient: Recipient, **settings) -> Platform:
    live = AuthServer(store, dmp_endpoint=recipient.url, **{**SETTINGS, **settings})
    admin = live.client_token("system/*.cruds")
    doctor = live.client_token("user/*.rs user/DocumentReference.cru", practitioner="gp1")
    coordinator = live.client_token("user/*.rs user/DocumentReference.cru")
    return Platform(live, recipient, admin, doctor, coordinator)


@pytest.fixture(name="platform")
def platform_fixture(tmp_path) -> Iterator[Platform]:
    store = make_store("sqlite", tmp_path, durable=False)
    recipient = Recipient()
    platform = platform_for(store, recipient)
    platform.seed(records.known_patient())
    yield platform
    platform.live.close()
    recipient.close()
    store.close()
