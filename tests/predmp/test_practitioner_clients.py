"""``relais clients add --practitioner ID``: a backend client acting for one doctor, whose tokens carry
``fhirUser: Practitioner/ID`` (what ``$validate-pre-dmp`` reads), as ``--patient`` gives ``patient``."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from fhir_server.store import open_store
from tests.access.authkit import AuthServer, ec_key, public_jwks, sqlite_store_fixture  # noqa: F401 (fixture)

REPOSITORY = Path(__file__).resolve().parents[2]


def relais(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {"RELAIS_STORE": f"sqlite:///{tmp_path / 'cli.db'}", "PATH": "/usr/bin:/bin"}
    entry = "import sys; from fhir_server.cli import main; main(sys.argv[1:])"
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True, text=True, env=env,
                          cwd=REPOSITORY, timeout=60)


def test_a_client_is_registered_for_a_practitioner_from_the_command_line(tmp_path):
    jwks_file = tmp_path / "doctor.jwks.json"
    jwks_file.write_text(json.dumps(public_jwks(ec_key())))
    added = relais(tmp_path, "clients", "add", "--name", "Dr Durand", "--scopes",
                   "user/*.rs user/DocumentReference.cru", "--jwks-file", str(jwks_file), "--practitioner", "gp1")
    assert added.returncode == 0, added.stderr
    client_id = added.stdout.split("client_id:")[1].split()[0]
    listed = json.loads(relais(tmp_path, "clients", "list", "--json").stdout)
    assert [c["practitioner"] for c in listed] == ["gp1"]
    assert "practitioner=gp1" in relais(tmp_path, "clients", "list").stdout
    store = open_store(f"sqlite:///{tmp_path / 'cli.db'}")
    try:
        assert store.kv_get("oauth_clients", client_id)["practitioner"] == "gp1"
    finally:
        store.close()
    bad = relais(tmp_path, "clients", "add", "--name", "x", "--scopes", "user/*.rs", "--secret",
                 "--practitioner", "not an id!")
    assert bad.returncode == 2 and "--practitioner" in bad.stderr


def _claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_the_tokens_of_a_practitioner_client_name_the_practitioner_in_fhir_user(sqlite_store):
    live = AuthServer(sqlite_store)
    try:
        client_id, key = live.add_client("user/*.rs", practitioner="gp1")
        assert _claims(live.token(client_id, key))["fhirUser"] == "Practitioner/gp1"
        other_id, other_key = live.add_client("user/*.rs")
        assert "fhirUser" not in _claims(live.token(other_id, other_key))
    finally:
        live.close()
