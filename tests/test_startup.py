"""Configuration errors, and the three ways to start the same app (console script, python app.py, gunicorn)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from kit.ports import free_port
from kit.processes import spawn_server, stop_server

from fhir_server.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("name, value", [
    ("RELAIS_STORE", "postgres://nope"), ("RELAIS_PORT", "70000"), ("RELAIS_PORT", "http"),
    ("RELAIS_BASE_URL", "ftp://x"), ("RELAIS_AUTH", "maybe"), ("RELAIS_MAX_BODY_BYTES", "-1"),
    ("RELAIS_MAX_COUNT", "0"),
])
def test_an_invalid_setting_names_its_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        load_config({name: value})


def test_defaults_and_overrides():
    config = load_config({})
    assert config.store == "sqlite:///./var/relais.db" and config.max_body_bytes == 10 * 1024 * 1024
    config = load_config({"RELAIS_STORE": "mongodb://db.example:27017/relais", "RELAIS_MAX_COUNT": "50",
                          "RELAIS_AUTH": "off"})
    assert config.store.startswith("mongodb://") and config.max_count == 50 and config.auth is False


def test_relais_serve_refuses_a_bad_variable_with_one_line(tmp_path):
    env = {**os.environ, "RELAIS_STORE": "postgres://nope"}
    result = subprocess.run([str(BIN / "relais"), "serve"], env=env, capture_output=True, text=True, timeout=60,
                            cwd=tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "RELAIS_STORE" in lines[0]


@pytest.mark.parametrize("how", ["console-script", "python-app", "gunicorn"])
def test_the_same_app_starts_three_ways(how, tmp_path):
    port = free_port()
    command = {
        "console-script": [str(BIN / "relais"), "serve", "--port", str(port)],
        "python-app": [sys.executable, "app.py"],
        "gunicorn": [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "app:create_app()"],
    }[how]
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_PORT": str(port)}
    proc = spawn_server(command, env, port, ROOT)
    try:
        base = f"http://127.0.0.1:{port}/fhir"
        created = requests.post(f"{base}/Patient", json={"resourceType": "Patient"},
                                headers={"Content-Type": "application/fhir+json"})
        assert created.status_code == 201
        if how == "console-script":  # links follow --port when RELAIS_BASE_URL is not set
            assert created.headers["Location"].startswith(base)
        assert requests.get(f"{base}/Patient/{created.json()['id']}").status_code == 200
    finally:
        stop_server(proc)
