"""The feed in real server processes: a listener needs its client; gunicorn workers share the MLLP port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests
from kit.ports import free_port
from kit.processes import spawn_server, stop_server

from auth.clients import ClientRegistry
from fhir_server.store import open_store
from tests.access.authkit import ASSERTION_TYPE, client_assertion, ec_key, public_jwks
from tests.mappers.hl7v2_samples import FULL_SCOPES, ack_fields, lab_result
from tests.mappers.mllpkit import Sender

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_relais_serve_refuses_an_mllp_port_without_its_client_in_one_line(tmp_path):
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_MLLP_PORT": "2575"}
    env.pop("RELAIS_MLLP_CLIENT", None)
    result = subprocess.run([str(BIN / "relais"), "serve"], env=env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RELAIS_MLLP_CLIENT" in lines[0]


def test_gunicorn_workers_share_the_mllp_port_and_audit_every_message(tmp_path):
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    store = open_store(url)
    key = ec_key()
    scopes = f"{FULL_SCOPES} system/AuditEvent.rs system/Observation.rs".split()
    client, _ = ClientRegistry(store).add(name="lab", scopes=scopes, jwks=public_jwks(key))
    store.close()
    port, mllp_port = free_port(), free_port()
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir",
           "RELAIS_MLLP_PORT": str(mllp_port), "RELAIS_MLLP_CLIENT": client.client_id,
           "RELAIS_DISPATCHER_INTERVAL_S": "0.2"}
    proc = spawn_server([str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"], env,
                        port, ROOT)
    try:
        senders = [Sender(mllp_port) for _ in range(6)]
        codes = [ack_fields(s.send(lab_result(control_id=f"G{i}", patient_id=f"P{i}")))["code"]
                 for i, s in enumerate(senders)]
        assert codes == ["AA"] * 6
        for sender in senders:
            sender.close()
        token_url = f"http://127.0.0.1:{port}/auth/token"
        form = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": client_assertion(client.client_id, key, token_url),
                "scope": "system/AuditEvent.rs system/Observation.rs"}
        token = requests.post(token_url, data=form, timeout=10).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
        observations = requests.get(f"http://127.0.0.1:{port}/fhir/Observation?_summary=count", headers=headers,
                                    timeout=10).json()
        assert observations.get("total") == 6, observations
        # the dispatchers turn the queued facts into AuditEvents: poll until they are stored
        deadline, found = time.monotonic() + 30, 0
        while time.monotonic() < deadline and found < 6:
            bundle = requests.get(f"http://127.0.0.1:{port}/fhir/AuditEvent?_count=100", headers=headers,
                                  timeout=10).json()
            found = sum(1 for e in bundle.get("entry", [])
                        if "HL7 v2 ORU^R01" in e["resource"].get("outcomeDesc", "")
                        and e["resource"]["subtype"][0]["code"] == "update")
            if found < 6:
                time.sleep(0.2)  # polling interval, bounded by the deadline
        assert found >= 6
    finally:
        stop_server(proc)
