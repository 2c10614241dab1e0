"""Test support: stores on each backend, and the real app served on a loopback port.

A module of its own (not conftest) so that tests import it by a name no other folder shadows.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from pathlib import Path

import requests
from werkzeug.serving import WSGIRequestHandler, make_server

from app import create_app
from fhir_server.config import load_config
from fhir_server.outbox import outbox_of
from fhir_server.store import open_store

# The team's shared material sits beside the repository (in CI too); RELAIS_SHARED overrides.
SHARED = Path(os.environ.get("RELAIS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
EXAMPLES = SHARED / "fixtures" / "fhir-r4-examples"

BACKENDS = ["sqlite", "mongomock"] + (["mongodb"] if os.environ.get("RELAIS_TEST_MONGODB_URI") else [])


def make_store(kind: str, tmp_path: Path):
    """A fresh, empty store of backend ``kind``."""
    if kind == "sqlite":
        return open_store(f"sqlite:///{tmp_path / 'relais.db'}")
    if kind == "mongomock":
        import mongomock

        return open_store("mongodb://localhost/relais_test", client=mongomock.MongoClient())
    # A real MongoDB: a database of its own per test, dropped by the fixture.
    return open_store(os.environ["RELAIS_TEST_MONGODB_URI"], database=f"relais_test_{uuid.uuid4().hex[:8]}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # one line per request drowns test output
        pass


class LiveServer:
    """The real app on 127.0.0.1:<free port>, served by werkzeug in a thread."""

    def __init__(self, app, port: int):
        self.app = app
        self.server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
        self.base = f"http://127.0.0.1:{port}/fhir"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.http = requests.Session()
        self.http.headers["Accept"] = "application/fhir+json"

    @property
    def store(self):
        return self.app.extensions["relais_store"]

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), **kw)

    def _send(self, method: str, path: str, body, content_type: str, kw: dict) -> requests.Response:
        headers = {"Content-Type": content_type, **kw.pop("headers", {})}
        return self.http.request(method, self.url(path), json=body, headers=headers, **kw)

    def post(self, path: str, body=None, **kw) -> requests.Response:
        return self._send("POST", path, body, "application/fhir+json", kw)

    def put(self, path: str, body=None, **kw) -> requests.Response:
        return self._send("PUT", path, body, "application/fhir+json", kw)

    def patch(self, path: str, ops, **kw) -> requests.Response:
        return self._send("PATCH", path, ops, "application/json-patch+json", kw)

    def delete(self, path: str, **kw) -> requests.Response:
        return self.http.delete(self.url(path), **kw)

    def close(self) -> None:
        self.server.shutdown()
        self.http.close()


def serve(store, **overrides) -> LiveServer:
    """Serve a fresh app on ``store``, authentication and scheduler off unless ``overrides`` say otherwise."""
    port = free_port()
    settings = {"auth": False, "scheduler": False, "base_url": f"http://127.0.0.1:{port}/fhir", **overrides}
    return LiveServer(create_app(load_config(environ={}, **settings), store=store), port)


def drain(app) -> int:
    """Run ``app``'s outbox dispatcher until a claim completes nothing (as its scheduler would); events completed."""
    return outbox_of(app).drain(app.extensions["relais_store"])


def observation(value: float = 72.0, patient: str = "Patient/p1", code: str = "29463-7") -> dict:
    """A small valid Observation (body weight by default)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": patient},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM when the test process dies, however it dies (Linux PR_SET_PDEATHSIG).

    Without it, a test run killed from outside leaves gunicorn masters respawning workers forever.
    """
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def spawn_server(command: list[str], env: dict[str, str], port: int, cwd: Path, timeout_s: float = 60):
    """Start a server process and return it once GET /fhir/metadata answers 200 on ``port``."""
    import subprocess
    import time

    proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{command[0]} exited: {proc.stdout.read().decode()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=5).status_code == 200:
                return proc
        except requests.RequestException:
            time.sleep(0.1)  # the port is not open yet; polled until the deadline
    proc.kill()
    raise RuntimeError(f"{command[0]} did not answer within {timeout_s} s")


def spawn_relais(env: dict[str, str], port: int):
    """``relais serve --port port`` (the console script of this venv) with ``env``, once it answers."""
    import sys

    command = [str(Path(sys.executable).with_name("relais")), "serve", "--port", str(port)]
    return spawn_server(command, env, port, Path(__file__).resolve().parents[1])


def stop_server(proc) -> None:
    import subprocess

    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
