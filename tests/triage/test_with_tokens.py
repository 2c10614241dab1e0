"""Triage with authentication on, as a device feed and a coordinator use it: tokens, scopes, audit."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "access"))

from authkit import live_fixture, sqlite_store_fixture  # noqa: E402, F401 (fixtures)
from kit.outbox import drain  # noqa: E402
from triagekit import measure  # noqa: E402

from auth.audit import CLIENT_ID_SYSTEM  # noqa: E402
from fhir_server.codes import TRIAGE_ALERT  # noqa: E402

TASKS = f"Task?code={TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}"


def test_a_device_measure_alerts_the_coordinator_who_completes_it_and_the_flag_ends(live):
    device = live.client_token("system/Observation.c system/Patient.cu")
    coordinator = live.client_token("system/Task.rus system/Flag.rs system/Patient.rs")
    assert live.request("PUT", "Patient/p1", device, json={"resourceType": "Patient", "id": "p1"}).ok
    assert live.request("POST", "Observation", device, json=measure("2708-6", 86, "%")).status_code == 201
    drain(live.app)
    assert live.request("GET", TASKS, device).status_code == 403  # the device reads no Task
    [entry] = live.request("GET", TASKS, coordinator).json()["entry"]
    task = entry["resource"]
    assert task["reasonCode"]["coding"][0]["code"] == "low-spo2"
    [flag] = live.request("GET", "Flag?patient=Patient/p1", coordinator).json()["entry"]
    assert flag["resource"]["status"] == "active"
    done = live.request("PUT", f"Task/{task['id']}", coordinator, json={**task, "status": "completed"})
    assert done.status_code == 200, done.text
    drain(live.app)
    [flag] = live.request("GET", "Flag?patient=Patient/p1", coordinator).json()["entry"]
    assert flag["resource"]["status"] == "inactive"
    writes = [e.resource for e in live.store.scan("AuditEvent", None, 1000)
              if e.resource["subtype"][0]["code"] in ("create", "update")
              and any(x.get("what", {}).get("reference", "").startswith("Flag/") for x in e.resource["entity"])]
    # the Flag was written, then ended, by triage itself, named as the agent
    assert sorted(e["subtype"][0]["code"] for e in writes) == ["create", "update"]
    assert {e["agent"][0]["who"]["identifier"]["system"] for e in writes} == {CLIENT_ID_SYSTEM}
    assert {e["agent"][0]["who"]["identifier"]["value"] for e in writes} == {"relais-triage"}
