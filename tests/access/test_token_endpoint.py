"""The token server through its real endpoints: discovery, keys, private_key_jwt, secrets, hostile assertions."""

from __future__ import annotations

import time
import uuid

import requests
from authkit import (
    ASSERTION_TYPE,
    AuthServer,
    any_store_fixture,  # noqa: F401 (fixture)
    client_assertion,
    ec_key,
    forged_token,
    live_fixture,  # noqa: F401 (fixture)
    observation,
    public_jwks,
    rsa_key,
    sqlite_store_fixture,  # noqa: F401 (fixture)
)
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from kit.live import LiveServer
from werkzeug.wrappers import Request, Response

from auth.keys import KeyRing
from auth.tokens import RECHECK_S


def test_smart_configuration_and_capability_security(live):
    conf = requests.get(live.url(".well-known/smart-configuration")).json()
    assert conf["token_endpoint"] == live.token_url
    assert conf["grant_types_supported"] == ["client_credentials"]
    assert set(conf["token_endpoint_auth_methods_supported"]) == {"private_key_jwt", "client_secret_basic"}
    assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "system/*.rs" in conf["scopes_supported"]
    assert conf["jwks_uri"] == live.origin + "/auth/jwks"
    capability = live.request("GET", "metadata").json()  # public, no token
    security = capability["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    assert ".well-known/smart-configuration" in security["description"]
    uris = {e["url"]: e["valueUri"] for e in security["extension"][0]["extension"]}
    assert uris["token"] == live.token_url


def _claims_verified_with_published_keys(live: AuthServer, token: str) -> dict:
    jwks = requests.get(live.origin + "/auth/jwks").json()
    assert all("d" not in key for key in jwks["keys"])  # never the private part
    return jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS384"]).claims


def test_private_key_jwt_rs384_and_es384_get_signed_tokens(live):
    for key in (rsa_key(), ec_key()):
        client_id, _ = live.add_client("system/Observation.rs system/Patient.r", key=key)
        response = live.token_response(client_id, key, scope="system/Observation.rs")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 300
        assert body["scope"] == "system/Observation.rs"
        assert response.headers["Cache-Control"] == "no-store"
        claims = _claims_verified_with_published_keys(live, body["access_token"])
        assert claims["client_id"] == client_id and claims["scope"] == "system/Observation.rs"
        assert claims["iss"] == live.origin + "/auth" and claims["aud"] == live.base
        assert claims["exp"] - claims["iat"] == 300 and claims["jti"]


def test_scope_is_narrowed_to_registration(live):
    client_id, key = live.add_client("system/Observation.rs")
    response = live.token_response(client_id, key, scope="system/Observation.rs system/Patient.cruds")
    assert response.json()["scope"] == "system/Observation.rs"
    response = live.token_response(client_id, key, scope="system/Patient.rs")
    assert response.status_code == 400 and response.json()["error"] == "invalid_scope"


def test_client_secret_basic_for_development(live):
    client, secret = live.clients.add(name="dev", scopes=["system/*.rs"], secret=True)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    ok = requests.post(live.token_url, data=form, auth=(client.client_id, secret))
    assert ok.status_code == 200 and ok.json()["scope"] == "system/*.rs"
    bad = requests.post(live.token_url, data=form, auth=(client.client_id, secret + "x"))
    assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"


def _refused(response: requests.Response, needle: str) -> None:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["error"] == "invalid_client"
    assert needle in body["error_description"], body


def test_hostile_client_assertions_are_refused(live):
    client_id, key = live.add_client("system/*.rs", key=rsa_key())
    # replayed assertion: the same jti twice
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": client_assertion(client_id, key, live.token_url),
    }
    assert requests.post(live.token_url, data=form).status_code == 200
    _refused(requests.post(live.token_url, data=form), "replay")
    # exp more than five minutes ahead
    _refused(live.token_response(client_id, key, exp_in=3600), "five minutes")
    # expired, and not yet valid
    _refused(live.token_response(client_id, key, exp_in=-120), "exp")
    _refused(live.token_response(client_id, key, nbf=int(time.time()) + 600), "nbf")
    # audience is another server
    _refused(live.token_response(client_id, key, aud="https://elsewhere.example/token"), "aud")
    # signed by a key the client never registered
    _refused(live.token_response(client_id, rsa_key()), "signature")
    # RS256 is not a SMART algorithm; HS256 keyed with the public key is the classic confusion attack
    same_key_any_alg = RSAKey.import_key({k: v for k, v in key.as_dict(private=True).items() if k != "alg"})
    _refused(live.token_response(client_id, same_key_any_alg, alg="RS256"), "alg")
    claims = {"iss": client_id, "sub": client_id, "aud": live.token_url, "exp": int(time.time()) + 60}
    form["client_assertion"] = forged_token(
        {"alg": "HS256", "kid": key.kid}, {**claims, "jti": "a"}, key.as_pem(private=False)
    )
    _refused(requests.post(live.token_url, data=form), "alg")
    form["client_assertion"] = forged_token({"alg": "none"}, {**claims, "jti": "b"})
    _refused(requests.post(live.token_url, data=form), "alg")
    # unknown client
    _refused(live.token_response(str(uuid.uuid4()), key), "unknown")


def test_an_internal_actor_gets_no_token_however_it_asks(live):
    live.clients.add_internal("relais-triage", ["system/*.rs"])
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    for secret in ("", "x"):
        refused = requests.post(live.token_url, data=form, auth=("relais-triage", secret))
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert live.token_response("relais-triage", rsa_key()).status_code == 401


def test_disabled_client_gets_no_token_and_its_tokens_stop_working(live):
    client_id, key = live.add_client("system/*.rs")
    token = live.token(client_id, key, "system/*.rs")
    assert live.request("GET", "Patient?_count=1", token).status_code == 200
    live.clients.set_enabled(client_id, False)
    assert live.token_response(client_id, key).status_code == 401
    # each process looks at a token's client again every RECHECK_S seconds
    deadline = time.monotonic() + RECHECK_S + 5
    while live.request("GET", "Patient?_count=1", token).status_code != 401:
        assert time.monotonic() < deadline, "a disabled client's token kept working"
        time.sleep(0.05)


def test_key_rotation_publishes_previous_key_and_old_tokens_still_verify(live):
    client_id, key = live.add_client("system/*.rs")
    old = live.token(client_id, key, "system/*.rs")
    new_kid = KeyRing(live.store).rotate()  # as another worker process would
    live.app.extensions["relais_auth"].keyring.refresh(force=True)
    jwks = requests.get(live.origin + "/auth/jwks").json()
    assert len(jwks["keys"]) == 2 and jwks["keys"][0]["kid"] == new_kid
    new = live.token(client_id, key, "system/*.rs")
    assert jwt.decode(new, KeySet.import_key_set(jwks), algorithms=["RS384"]).header["kid"] == new_kid
    assert live.request("GET", "Patient?_count=1", old).status_code == 200
    assert live.request("GET", "Patient?_count=1", new).status_code == 200


def test_introspection_and_revocation(live):
    client, secret = live.clients.add(name="dev", scopes=["system/*.rs"], secret=True)
    gateway, gateway_secret = live.clients.add(name="gw", scopes=["system/Patient.r"], secret=True, gateway=True)
    other, other_secret = live.clients.add(name="other", scopes=["system/Patient.r"], secret=True)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    token = requests.post(live.token_url, data=form, auth=(client.client_id, secret)).json()["access_token"]
    introspect = live.origin + "/auth/introspect"
    own = requests.post(introspect, data={"token": token}, auth=(client.client_id, secret)).json()
    assert own["active"] is True and own["client_id"] == client.client_id and own["scope"] == "system/*.rs"
    by_gateway = requests.post(introspect, data={"token": token}, auth=(gateway.client_id, gateway_secret)).json()
    assert by_gateway["active"] is True
    by_other = requests.post(introspect, data={"token": token}, auth=(other.client_id, other_secret)).json()
    assert by_other == {"active": False}
    assert requests.post(introspect, data={"token": token}).status_code == 401  # the endpoint needs a client
    # revocation: only by its own client, then refused everywhere
    revoke = live.origin + "/auth/revoke"
    assert requests.post(revoke, data={"token": token}, auth=(other.client_id, other_secret)).status_code == 400
    assert live.request("GET", "Patient?_count=1", token).status_code == 200
    assert requests.post(revoke, data={"token": token}, auth=(client.client_id, secret)).status_code == 200
    assert live.request("GET", "Patient?_count=1", token).status_code == 401
    gone = requests.post(introspect, data={"token": token}, auth=(gateway.client_id, gateway_secret)).json()
    assert gone == {"active": False}


class _JWKSHost:
    """A client's JWKS published on a loopback URL, as a real backend client would host it."""

    def __init__(self, jwks: dict):
        self.jwks = jwks
        self.hits = 0

        @Request.application
        def app(request: Request) -> Response:
            self.hits += 1
            import json

            return Response(json.dumps(self.jwks), mimetype="application/json")

        self.served = LiveServer(app)
        self.url = f"{self.served.origin}/.well-known/jwks.json"

    def close(self) -> None:
        self.served.close()


def test_jku_on_the_allow_list(sqlite_store):
    key = rsa_key()
    host = _JWKSHost(public_jwks(key))
    server = AuthServer(sqlite_store, jku_allowlist=(host.url,))
    try:
        client, _ = server.clients.add(name="remote", scopes=["system/*.rs"], jwks_url=host.url)
        response = server.token_response(client.client_id, key, header={"jku": host.url})
        assert response.status_code == 200, response.text
        assert host.hits == 1
        # without jku the registered URL is used too (and the cached set serves it)
        assert server.token_response(client.client_id, key).status_code == 200
        # a jku that is not the client's registered URL is refused before any fetch
        bad = server.token_response(client.client_id, key, header={"jku": "http://127.0.0.1:1/evil.json"})
        _refused(bad, "jku")
    finally:
        server.close()
        host.close()


def test_jku_not_on_the_allow_list_is_refused(live):
    key = rsa_key()
    host = _JWKSHost(public_jwks(key))
    try:
        client, _ = live.clients.add(name="remote", scopes=["system/*.rs"], jwks_url=host.url)
        _refused(live.token_response(client.client_id, key, header={"jku": host.url}), "allow-list")
        assert host.hits == 0
    finally:
        host.close()


def test_token_requests_are_audited(live):
    client_id, key = live.add_client("system/*.rs")
    live.token(client_id, key, "system/*.rs")
    live.token_response(client_id, key, exp_in=3600)
    events = [e for e in live.audit_events() if e["type"]["code"] == "110114"]
    assert [e["outcome"] for e in events] == ["0", "4"]
    assert all(e["agent"][0]["who"]["identifier"]["value"] == client_id for e in events)
    assert "five minutes" in events[1]["outcomeDesc"]


def test_the_whole_flow_on_each_backend(any_store):
    """Token, replay refusal, read, 401, 403 and audit on SQLite and on the MongoDB code path."""
    # the Observation's Patient is beside the point: this client may not create one, and every event is counted
    server = AuthServer(any_store, allow_dangling_references=True)
    try:
        client_id, key = server.add_client("system/Observation.cruds")
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(client_id, key, server.token_url),
        }
        token = requests.post(server.token_url, data=form).json()["access_token"]
        _refused(requests.post(server.token_url, data=form), "replay")
        oid = server.request("POST", "Observation", token, json=observation()).json()["id"]
        assert server.request("GET", f"Observation/{oid}", token).status_code == 200
        assert server.request("GET", f"Observation/{oid}").status_code == 401
        assert server.request("GET", "Patient?_count=1", token).status_code == 403
        outcomes = [e["outcome"] for e in server.audit_events() if e["type"]["code"] == "rest"]
        assert outcomes == ["0", "0", "4", "4"]
    finally:
        server.close()


def test_wrong_secret_and_unknown_client_get_the_same_plain_answer(live):
    client, secret = live.clients.add(name="dev", scopes=["system/*.rs"], secret=True)
    form = {"grant_type": "client_credentials", "scope": "system/*.rs"}
    answers = [requests.post(live.token_url, data=form, auth=auth) for auth in (
        (client.client_id, secret + "x"),  # wrong secret
        (str(uuid.uuid4()), secret),  # unknown client
    )]
    answers.append(requests.post(live.token_url, data=form))  # no credentials at all
    for answer in answers:
        assert answer.status_code == 401, answer.text
        body = answer.json()
        assert body["error"] == "invalid_client" and body["error_description"] == "unknown client or wrong credentials"
    # introspection authenticates its callers the same way
    introspect = requests.post(live.origin + "/auth/introspect", data={"token": "x"}, auth=(client.client_id, "bad"))
    assert introspect.status_code == 401 and introspect.json()["error_description"] == (
        "unknown client or wrong credentials")


def test_startup_banner_names_the_command_of_a_fresh_clone():
    from auth import startup_help
    from fhir_server.config import load_config

    text = startup_help(load_config(environ={}))
    assert ".venv/bin/relais clients add" in text
    assert all(".venv/bin/relais" in line for line in text.splitlines() if "relais clients" in line)
