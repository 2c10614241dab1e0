"""Servers in processes of their own (``relais serve``, gunicorn), started and stopped by tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import requests

REPOSITORY = Path(__file__).resolve().parents[2]


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM when the test process dies, however it dies (Linux PR_SET_PDEATHSIG).

    Without it, a test run killed from outside leaves gunicorn masters respawning workers forever.
    """
    import ctypes
    import signal

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def spawn_server(command: list[str], env: dict[str, str], port: int, cwd: Path, timeout_s: float = 60):
    """Start a server process and return it once GET /fhir/metadata answers 200 on ``port``."""
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
    command = [str(Path(sys.executable).with_name("relais")), "serve", "--port", str(port)]
    return spawn_server(command, env, port, REPOSITORY)


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
