"""What the HTTP benchmarks share: a gunicorn server on the embedded store, and its CPU time."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # serving.py: spawn a server that dies with this process


def start_gunicorn(
    store_url: str, workers: int = 2, env: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """gunicorn -w ``workers`` on ``store_url`` (auth off, scheduler on unless ``env`` says otherwise),
    answering on ``port`` (a free one by default)."""
    from serving import free_port, spawn_server

    port = port or free_port()
    environment = {**os.environ, "RELAIS_STORE": store_url, "RELAIS_AUTH": "off",
                   "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir", **(env or {})}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-w", str(workers), "-b", f"127.0.0.1:{port}", "--log-level", "warning",
               "app:create_app()"]
    return spawn_server(command, environment, port, ROOT), port


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its running children (gunicorn's workers)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid] + [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for p in pids:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def await_idle(pid: int, deadline_s: float = 300.0) -> None:
    """Poll the server's CPU until a quarter-second passes with (almost) none used.

    Work a phase leaves to the background (the audit trail, the outbox) is part of its cost.
    """
    end = time.monotonic() + deadline_s
    before = cpu_seconds(pid)
    while time.monotonic() < end:
        time.sleep(0.25)  # a sampling interval, not a synchronisation: idleness is what is measured
        now = cpu_seconds(pid)
        if now - before < 0.02:
            return
        before = now
