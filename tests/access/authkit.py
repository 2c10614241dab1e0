"""Auth test kit: the real app with authentication on, served on loopback, and real test keys and JWTs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from kit.live import LiveServer, relais_app
from kit.ports import free_port
from kit.stores import close_store, make_store, put_all

from auth.audit import event_from_payload
from auth.clients import ClientRegistry
from fhir_server.write import now_instant

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def rsa_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"alg": "RS384", "use": "sig"}, auto_kid=True)


def ec_key() -> ECKey:
    return ECKey.generate_key("P-384", parameters={"alg": "ES384", "use": "sig"}, auto_kid=True)


def public_jwks(*keys) -> dict:
    return {"keys": [k.as_dict(private=False) for k in keys]}


def client_assertion(
    client_id: str, key, aud: str, alg: str | None = None, exp_in: int = 240, header: dict | None = None, **claims
) -> str:
    """A signed client assertion as a SMART backend client makes one."""
    alg = alg or ("ES384" if isinstance(key, ECKey) else "RS384")
    now = int(time.time())
    payload = {"iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "jti": uuid.uuid4().hex}
    payload.update(claims)
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": "JWT", **(header or {})}, payload, key, algorithms=[alg])


class AuthServer(LiveServer):
    """The real Relais app (authentication on) on 127.0.0.1:<free port>."""

    def __init__(self, store, **overrides):
        port = free_port()
        base = f"http://127.0.0.1:{port}/fhir"
        # The session asks for nothing by default: token, JWKS and $export-file answers are not FHIR JSON.
        super().__init__(relais_app(store, base, **{"auth": True, **overrides}), port, accept=None)
        self.token_url = self.origin + "/auth/token"
        self.clients = ClientRegistry(store)

    def token_response(self, client_id: str, key, scope: str | None = None, **kw) -> requests.Response:
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(client_id, key, kw.pop("aud", self.token_url), **kw),
        }
        if scope is not None:
            form["scope"] = scope
        return self.http.post(self.token_url, data=form)

    def token(self, client_id: str, key, scope: str | None = None) -> str:
        response = self.token_response(client_id, key, scope)
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def add_client(self, scopes: str, key=None, **kw):
        """Register a private_key_jwt client with a fresh key (EC: quick to make); returns (client_id, key)."""
        key = key or ec_key()
        client, _ = self.clients.add(name="test", scopes=scopes.split(), jwks=public_jwks(key), **kw)
        return client.client_id, key

    def client_token(self, scopes: str, **kw) -> str:
        client_id, key = self.add_client(scopes, **kw)
        return self.token(client_id, key, scope=None)

    def request(self, method: str, path: str, token: str | None = None, **kw) -> requests.Response:
        headers = {"Accept": "application/fhir+json", **kw.pop("headers", {})}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if "json" in kw:
            headers.setdefault("Content-Type", "application/fhir+json")
        return self.http.request(method, self.url(path), headers=headers, **kw)

    def audit_events(self) -> list[dict]:
        """AuditEvents queued in the outbox so far (claimed, then released so nothing is consumed)."""
        events = self.store.outbox_claim("auth-tests", 30.0, 10_000)
        self.store.outbox_release([e.id for e in events], 0.0)
        return [event_from_payload(e.payload) for e in events if e.payload.get("kind") == "audit"]

def observation(patient: str = "p1", **extra) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": 72.0, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
        **extra,
    }


def patients(store, *ids: str) -> None:
    """Patients the tests' Observations name (a reference to a missing one is refused), stored directly:
    no request, so no AuditEvent to count."""
    put_all(store, [{"resourceType": "Patient", "id": pid, "meta": {"lastUpdated": now_instant()}} for pid in ids])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_token(header: dict, claims: dict, hmac_secret: bytes | None = None) -> str:
    """A token as an attacker builds it by hand: HS256 keyed with anything (e.g. a public key), or alg none.

    JOSE libraries rightly refuse to make these, so the attack is spelled out with the stdlib.
    """
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    if hmac_secret is None:
        return signing_input + "."
    signature = hmac.new(hmac_secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


# Fixtures live here, not in a conftest.py of tests/access: test modules import the ones they use.
@pytest.fixture(name="sqlite_store")
def sqlite_store_fixture(tmp_path: Path):
    # these tests are about access, not durability: no fsync per commit
    store = make_store("sqlite", tmp_path, durable=False)
    yield store
    store.close()


@pytest.fixture(name="any_store", params=["sqlite", "mongomock"])
def any_store_fixture(request: pytest.FixtureRequest, tmp_path: Path):
    store = make_store(request.param, tmp_path, durable=False)
    yield store
    close_store(store)


@pytest.fixture(name="live")
def live_fixture(sqlite_store) -> Iterator[AuthServer]:
    server = AuthServer(sqlite_store)
    yield server
    server.close()
