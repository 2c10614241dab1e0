"""The export survives a ``kill -9`` of the server between validation and sending: the job was stored in the
validation's own transaction, and the next server process sends it."""

from __future__ import annotations

import os
import time

import requests
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server

from auth.clients import ClientRegistry
from fhir_server.store import open_store
from predmp.state import export_state
from tests.access.authkit import ASSERTION_TYPE, client_assertion, ec_key, public_jwks
from tests.predmp import records
from tests.predmp.recipient import Recipient


def _token(origin: str, client_id: str, key) -> str:
    token_url = f"{origin}/auth/token"
    form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(client_id, key, token_url)}
    response = requests.post(token_url, data=form, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_a_validated_pre_dmp_is_sent_after_a_kill_9_of_the_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    store = open_store(url)
    admin_key, doctor_key = ec_key(), ec_key()
    registry = ClientRegistry(store)
    admin, _ = registry.add("admin", ["system/*.cruds"], jwks=public_jwks(admin_key))
    doctor, _ = registry.add("Dr Durand", ["user/*.rs", "user/DocumentReference.cru"], jwks=public_jwks(doctor_key),
                             practitioner="gp1")
    store.close()
    recipient = Recipient()
    recipient.stop()  # the national record is down when the doctor validates
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_BASE_URL": f"{origin}/fhir", "RELAIS_DMP_ENDPOINT": recipient.url,
           "RELAIS_DMP_TIMEOUT_S": "1"}
    proc = spawn_relais(env, port)
    try:
        admin_token = _token(origin, admin.client_id, admin_key)
        headers = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/fhir+json"}
        for resource in records.known_patient():
            response = requests.put(f"{origin}/fhir/{resource['resourceType']}/{resource['id']}", json=resource,
                                    headers=headers, timeout=10)
            assert response.status_code in (200, 201), response.text
        draft = requests.post(f"{origin}/fhir/Patient/p1/$pre-dmp", headers=headers, timeout=10).json()
        doctor_headers = {"Authorization": f"Bearer {_token(origin, doctor.client_id, doctor_key)}"}
        validated = requests.post(f"{origin}/fhir/DocumentReference/{draft['id']}/$validate-pre-dmp",
                                  headers=doctor_headers, timeout=10)
        assert validated.status_code == 200, validated.text
        proc.kill()  # kill -9: no shutdown, whatever the dispatcher was doing
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    recipient.start()  # the national record is back
    proc = spawn_relais(env, port)
    try:
        deadline = time.monotonic() + 120  # a claim the killed process held comes back when its lease ends
        state: dict = {}
        while time.monotonic() < deadline:
            response = requests.get(f"{origin}/fhir/DocumentReference/{draft['id']}",
                                    headers={"Authorization": f"Bearer {_token(origin, admin.client_id, admin_key)}"},
                                    timeout=10)
            state = export_state(response.json())
            if state.get("status") == "sent":
                break
            time.sleep(0.5)  # the new process's dispatcher runs every second
        assert state.get("status") == "sent", state
        assert len(recipient.received) == 1 and recipient.problems == [[]]
    finally:
        stop_server(proc)
        recipient.close()
