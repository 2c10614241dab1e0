"""What the HTTP benchmarks share: a gunicorn server on the embedded store, and its CPU time."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # kit/processes.py: spawn a server that dies with this process


def start_gunicorn(
    store_url: str, workers: int = 2, env: dict[str, str] | None = None, port: int | None = None
) -> tuple[subprocess.Popen, int]:
    """gunicorn -w ``workers`` on ``store_url`` (auth off, scheduler on unless ``env`` says otherwise),
    answering on ``port`` (a free one by default)."""
    from kit.ports import free_port
    from kit.processes import spawn_server

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


def exchange(port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None,
             timeout_s: float = 300.0) -> tuple[int, bytes]:
    """One request on a connection of its own (``Connection: close``): (status, body).

    The load processes share the server's two cores, so their own cost is kept low: http.client
    parses every response's headers with the email package, which doubled the load's CPU per
    request (0.26 against 0.13 ms, measured against a Flask endpoint that returns a constant).
    """
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, data = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 "):
        raise RuntimeError(f"not an HTTP response: {head[:100]!r}")
    return int(head[9:12]), data
