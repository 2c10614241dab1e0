"""Several server processes triaging the same patient at once (gunicorn -w 3): one open Task per rule and
patient, every dangerous measure on it once."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from kit.ports import free_port
from kit.processes import spawn_server, stop_server
from triagekit import measure

from fhir_server.codes import TRIAGE_ALERT
from rules.alerts import TRIGGER_SYSTEM

JSON = {"Content-Type": "application/fhir+json"}


def test_three_processes_one_patient_one_task(tmp_path: Path):
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_BASE_URL": base}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-w", "3", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"]
    proc = spawn_server(command, env, port, Path(__file__).resolve().parents[2])
    try:
        assert requests.put(f"{base}/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=JSON).ok

        def post(n: int) -> str:
            body = measure("8867-4", 140 + n % 20, "/min", at=f"2026-11-20T08:{n:02d}:00Z")
            answer = requests.post(f"{base}/Observation", json=body, headers=JSON, timeout=30)
            answer.raise_for_status()
            return f"Observation/{answer.json()['id']}/_history/1"

        with ThreadPoolExecutor(max_workers=6) as pool:
            posted = set(pool.map(post, range(48)))
        deadline = time.monotonic() + 90
        while True:
            bundle = requests.get(f"{base}/Task?code={TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}",
                                  timeout=30).json()
            tasks = [e["resource"] for e in bundle.get("entry", [])]
            triggers = Counter(i["value"].partition(":")[2] for t in tasks for i in t["identifier"]
                               if i["system"] == TRIGGER_SYSTEM)
            if set(triggers) >= posted or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # polled until every measure is on the Task or the deadline passes
        assert len(tasks) == 1 and set(triggers) == posted and max(triggers.values()) == 1
        flags = requests.get(f"{base}/Flag", timeout=30).json().get("entry", [])
        assert len(flags) == 1
    finally:
        stop_server(proc)
