"""Exactly once: the server is killed (SIGKILL) in the middle of a burst of 500 measures from 4 clients and
started again on the same store; every dangerous measure is triaged once, and no Task is made twice."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter

import requests
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server
from triagekit import measure

from fhir_server.codes import TRIAGE_ALERT
from rules.alerts import TRIGGER_SYSTEM

CLIENTS, EACH = 4, 125
PATIENTS = 10
IDS = "urn:relais:test:measure"


def _measures(client: int) -> list[tuple[str, dict]]:
    out = []
    for i in range(EACH):
        n = client * EACH + i
        value = (45, 60, 95, 120)[n % 4]  # half of them below 70 mg/dL: dangerous
        body = measure("2339-0", value, "mg/dL", patient=f"p{n % PATIENTS}",
                       at=f"2026-11-20T{8 + n // 60:02d}:{n % 60:02d}:00Z")
        key = f"m{n}"
        body["identifier"] = [{"system": IDS, "value": key}]
        out.append((key, body))
    return out


def _post_until_stored(base: str, key: str, body: dict, deadline: float) -> str:
    """POST with If-None-Exist until an answer comes: a resend after the kill finds what was stored."""
    headers = {"Content-Type": "application/fhir+json", "If-None-Exist": f"identifier={IDS}|{key}"}
    while time.monotonic() < deadline:
        try:
            answer = requests.post(f"{base}/Observation", json=body, headers=headers, timeout=10)
        except requests.RequestException:
            time.sleep(0.05)  # the server is down: polled again until the deadline
            continue
        if answer.status_code in (200, 201):
            return answer.json()["id"]
        time.sleep(0.05)
    raise AssertionError(f"{key} never stored")


def test_kill_9_mid_burst_loses_no_alert_and_duplicates_none(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_BASE_URL": base}
    proc = spawn_relais(env, port)
    for p in range(PATIENTS):
        assert requests.put(f"{base}/Patient/p{p}", json={"resourceType": "Patient", "id": f"p{p}"},
                            headers={"Content-Type": "application/fhir+json"}, timeout=10).ok
    stored: dict[str, tuple[str, float]] = {}
    done = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + 240

    def client(number: int) -> None:
        for key, body in _measures(number):
            rid = _post_until_stored(base, key, body, deadline)
            with lock:
                stored[key] = (rid, body["valueQuantity"]["value"])
                done["posted"] += 1

    threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
    for thread in threads:
        thread.start()
    while done["posted"] < 200 and time.monotonic() < deadline:
        time.sleep(0.01)  # polling the clients' progress
    os.kill(proc.pid, signal.SIGKILL)  # mid-batch: the dispatcher was claiming and triaging
    proc.wait()
    killed_at = done["posted"]
    proc = spawn_relais(env, port)
    try:
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()))
        assert len(stored) == CLIENTS * EACH and killed_at < CLIENTS * EACH
        dangerous = {f"Observation/{rid}/_history/1" for rid, value in stored.values() if value < 70}
        assert len(dangerous) == 250
        # the killed process's leases expire (60 s) and its claimed events go back to the pool
        while True:
            tasks = _triage_tasks(base)
            triggers = Counter(i["value"].partition(":")[2] for t in tasks for i in t["identifier"]
                               if i["system"] == TRIGGER_SYSTEM)
            if set(triggers) >= dangerous or time.monotonic() > deadline:
                break
            time.sleep(0.5)  # polled until every alert is there or the deadline passes
        assert set(triggers) == dangerous  # none missed, no safe measure alerted
        assert [t for t, n in triggers.items() if n > 1] == []  # each triaged once
        per_patient = Counter(t["for"]["reference"] for t in tasks)
        assert per_patient == {f"Patient/p{p}": 1 for p in range(PATIENTS)}  # one open Task per patient
        flags = requests.get(f"{base}/Flag?_count=1000", timeout=30).json().get("entry", [])
        assert len(flags) == PATIENTS
    finally:
        stop_server(proc)


def _triage_tasks(base: str) -> list[dict]:
    answer = requests.get(f"{base}/Task?code={TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}&_count=1000",
                          timeout=30)
    return [e["resource"] for e in answer.json().get("entry", [])]
