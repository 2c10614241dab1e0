"""``relais clients add|list|disable`` through the real console entry point, on a temp SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from authkit import ec_key, public_jwks

from fhir_server.store import open_store


def relais(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"RELAIS_STORE": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    entry = "import sys; from fhir_server.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).resolve().parents[2], timeout=60)


def test_add_list_disable(tmp_path):
    jwks_file = tmp_path / "client.jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(ec_key())))
    added = relais(tmp_path, "clients", "add", "--name", "lab", "--scopes", "system/Observation.cruds",
                   "--jwks-file", str(jwks_file))
    assert added.returncode == 0, added.stderr
    client_id = added.stdout.split("client_id:")[1].split()[0]
    dev = relais(tmp_path, "clients", "add", "--name", "dev", "--scopes", "system/*.rs", "--secret")
    assert dev.returncode == 0 and "secret:" in dev.stdout
    listed = json.loads(relais(tmp_path, "clients", "list", "--json").stdout)
    assert {c["name"]: c["auth"] for c in listed} == {"lab": "private_key_jwt", "dev": "client_secret_basic"}
    secret = dev.stdout.split("secret:")[1].split()[0]
    assert all(secret not in json.dumps(c) and "secret_hash" not in c for c in listed)
    assert relais(tmp_path, "clients", "disable", client_id).returncode == 0
    store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        assert store.kv_get("oauth_clients", client_id)["enabled"] is False
    finally:
        store.close()
    assert "DISABLED" in relais(tmp_path, "clients", "list").stdout


def test_add_refuses_bad_input(tmp_path):
    bad_scope = relais(tmp_path, "clients", "add", "--name", "x", "--scopes", "system/Observation.everything",
                       "--secret")
    assert bad_scope.returncode == 2 and "SMART scope" in bad_scope.stderr
    no_patient = relais(tmp_path, "clients", "add", "--name", "x", "--scopes", "patient/*.rs", "--secret")
    assert no_patient.returncode == 2 and "--patient" in no_patient.stderr
    private = tmp_path / "private.json"
    private.write_text(json.dumps({"keys": [ec_key().as_dict(private=True)]}))
    leaked = relais(tmp_path, "clients", "add", "--name", "x", "--scopes", "system/*.rs", "--jwks-file", str(private))
    assert leaked.returncode == 2 and "private" in leaked.stderr
    assert relais(tmp_path, "clients", "disable", "nope").returncode == 1


def test_an_internal_actor_is_registered_from_the_command_line(tmp_path):
    added = relais(tmp_path, "clients", "internal", "relais-triage", "--scopes", "system/Task.cru system/*.rs")
    assert added.returncode == 0, added.stderr
    assert "relais-triage" in added.stdout and "secret" not in added.stdout
    listed = json.loads(relais(tmp_path, "clients", "list", "--json").stdout)
    assert [(c["client_id"], c["auth"], c["scopes"]) for c in listed] == [
        ("relais-triage", "internal", "system/Task.cru system/*.rs")]
    assert relais(tmp_path, "clients", "internal", "nobody", "--scopes", "system/*.rs").returncode != 0
