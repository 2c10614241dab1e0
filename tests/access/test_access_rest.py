"""Access tokens on the real FHIR endpoints: hostile tokens get 401, out-of-scope calls 403, all audited."""

from __future__ import annotations

import time

import pytest
from authkit import forged_token, live_fixture, observation, patients, sqlite_store_fixture  # noqa: F401 (fixtures)
from fhir.resources.R4B.auditevent import AuditEvent
from joserfc import jwt


def _server_signed(live, **changes) -> str:
    """A token signed with the server's real current key, with claims of the test's choosing."""
    state = live.app.extensions["relais_auth"]
    client_id, _ = live.add_client("system/*.cruds")
    now = int(time.time())
    claims = {"iss": state.issuer, "aud": state.base_url, "sub": client_id, "client_id": client_id,
              "scope": "system/*.cruds", "iat": now, "nbf": now, "exp": now + 300, "jti": f"t{now}{len(changes)}"}
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    key = state.keyring.signing_key()
    return jwt.encode({"alg": "RS384", "kid": key.kid}, claims, key, algorithms=["RS384"])


def _tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    import base64
    import json

    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["scope"] = "system/*.cruds system/AuditEvent.cruds"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


HOSTILE = {
    "expired": lambda live: _server_signed(live, exp=int(time.time()) - 120, iat=int(time.time()) - 500),
    "not yet valid": lambda live: _server_signed(live, nbf=int(time.time()) + 600),
    "wrong audience": lambda live: _server_signed(live, aud="https://other.example/fhir"),
    "wrong issuer": lambda live: _server_signed(live, iss="https://evil.example/auth"),
    "no jti": lambda live: _server_signed(live, jti=None),
    "tampered": lambda live: _tampered(live.client_token("system/Observation.rs")),
    "alg none": lambda live: forged_token(
        {"alg": "none"},
        jwt.decode(live.client_token("system/*.rs"), lambda o: _public(live), algorithms=["RS384"]).claims,
    ),
    "HS256 keyed with the public key": lambda live: forged_token(
        {"alg": "HS256", "kid": _public(live).kid},
        jwt.decode(live.client_token("system/*.rs"), lambda o: _public(live), algorithms=["RS384"]).claims,
        _public(live).as_pem(private=False),
    ),
    "garbage": lambda live: "not-a-jwt",
}


def _public(live):
    return live.app.extensions["relais_auth"].keyring.signing_key()


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_access_tokens_get_401_outcome_and_audit(live, kind):
    token = HOSTILE[kind](live)
    response = live.request("GET", "Patient?_count=1", token)
    assert response.status_code == 401, (kind, response.text)
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] in ("login", "expired")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    events = [e for e in live.audit_events() if e["type"]["code"] == "rest"]
    assert events[-1]["outcome"] == "4" and "401" in events[-1]["outcomeDesc"]
    assert events[-1]["subtype"][0]["code"] == "search"


def test_missing_and_malformed_authorization(live):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = live.request("GET", "Observation/x", headers=headers)
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"


def test_scopes_are_enforced_per_interaction(live):
    patients(live.store, "p1")
    writer = live.client_token("system/Observation.cruds system/Patient.c")
    created = live.request("POST", "Observation", writer, json=observation())
    assert created.status_code == 201
    oid = created.json()["id"]
    pid = live.request("POST", "Patient", writer, json={"resourceType": "Patient"}).json()["id"]
    for scopes in ("system/Observation.rs", "system/Observation.read", "user/Observation.r"):
        reader = live.client_token(scopes)
        assert live.request("GET", f"Observation/{oid}", reader).status_code == 200
        assert live.request("GET", f"Observation/{oid}/_history/1", reader).status_code == 200
        denied = live.request("POST", "Observation", reader, json=observation())
        assert denied.status_code == 403 and denied.json()["issue"][0]["code"] == "forbidden"
        assert live.request("DELETE", f"Observation/{oid}", reader).status_code == 403
        assert live.request("GET", f"Patient/{pid}", reader).status_code == 403
    search_only = live.client_token("system/Observation.s")
    assert live.request("GET", "Observation", search_only).status_code == 200
    assert live.request("GET", f"Observation/{oid}", search_only).status_code == 403
    read_only = live.client_token("system/Observation.r")
    assert live.request("GET", "Observation", read_only).status_code == 403
    assert live.request("GET", "Observation/_history", read_only).status_code == 403
    assert live.request("GET", f"Observation/{oid}/_history", read_only).status_code == 200


def test_audit_events_cannot_be_changed_whatever_the_scopes(live):
    admin = live.client_token("system/*.cruds")
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "recorded": "2026-11-23T10:00:00Z",
        "agent": [{"who": {"display": "x"}, "requestor": True}],
        "source": {"observer": {"display": "x"}},
    }
    created = live.request("POST", "AuditEvent", admin, json=event)
    assert created.status_code == 201, created.text
    aid = created.json()["id"]
    # Not a scope question but what the type takes: 405 Method Not Allowed (R4 http.html), with Allow.
    updated = live.request("PUT", f"AuditEvent/{aid}", admin, json={**event, "id": aid})
    assert updated.status_code == 405 and updated.headers["Allow"] == "GET, HEAD"
    assert updated.json()["issue"][0]["code"] == "not-supported"
    patch = live.request("PATCH", f"AuditEvent/{aid}", admin, json=[{"op": "remove", "path": "/agent"}],
                         headers={"Content-Type": "application/json-patch+json"})
    assert patch.status_code == 405
    assert live.request("DELETE", f"AuditEvent/{aid}", admin).status_code == 405
    conditional = live.request("DELETE", f"AuditEvent?_id={aid}", admin)
    assert conditional.status_code == 405 and conditional.headers["Allow"] == "GET, HEAD, POST"
    batch = live.request("POST", "", admin, json={"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "DELETE", "url": f"AuditEvent/{aid}"}}]})
    assert batch.json()["entry"][0]["response"]["status"] == "405 Method Not Allowed", batch.text
    assert live.request("GET", f"AuditEvent/{aid}", admin).json()["agent"] == event["agent"]
    # Each refusal is audited, with the status it was answered with.
    from kit.outbox import drain

    drain(live.app)
    trail = live.request("GET", "AuditEvent", admin, params={"entity": f"AuditEvent/{aid}", "_count": "50"}).json()
    refused = [e["resource"] for e in trail.get("entry", []) if e["resource"]["outcome"] == "4"]
    assert {e["subtype"][0]["code"] for e in refused} >= {"update", "patch", "delete"}, refused
    assert all("405" in e["outcomeDesc"] for e in refused)


def test_patient_scope_sees_only_its_compartment(live):
    admin = live.client_token("system/*.cruds")
    for pid in ("p1", "p2"):
        put = live.request("PUT", f"Patient/{pid}", admin, json={"resourceType": "Patient", "id": pid})
        assert put.status_code in (200, 201), put.text
    mine = live.request("POST", "Observation", admin, json=observation("p1")).json()["id"]
    theirs = live.request("POST", "Observation", admin, json=observation("p2")).json()["id"]
    token = live.client_token("patient/*.rs patient/Observation.c", patient="p1")
    assert live.request("GET", "Patient/p1", token).status_code == 200
    assert live.request("GET", "Patient/p2", token).status_code == 403
    assert live.request("GET", f"Observation/{mine}", token).status_code == 200
    assert live.request("GET", f"Observation/{theirs}", token).status_code == 403
    found = live.request("GET", "Observation", token).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [mine]
    assert live.request("POST", "Observation", token, json=observation("p1")).status_code == 201
    assert live.request("POST", "Observation", token, json=observation("p2")).status_code == 403
    history = live.request("GET", "_history", token)
    assert history.status_code == 403


def test_every_interaction_is_audited_in_balp_shape(live):
    client_id, key = live.add_client("system/*.cruds")
    token = live.token(client_id, key)
    live.audit_events()  # the token request's own event is tested elsewhere
    patients(live.store, "p9")
    oid = live.request("POST", "Observation", token, json=observation("p9")).json()["id"]
    live.request("GET", f"Observation/{oid}", token)
    live.request("GET", "Observation?subject=Patient/p9", token)
    live.request("PUT", f"AuditEvent/{oid}", token, json={"resourceType": "AuditEvent", "id": oid})
    events = [e for e in live.audit_events() if e["type"]["code"] == "rest"]
    for event in events:
        AuditEvent.model_validate(event)
        assert event["source"]["site"] == live.base
    by_subtype = {e["subtype"][0]["code"]: e for e in events}
    assert {"create", "read", "search", "update"} <= set(by_subtype)
    read = by_subtype["read"]
    assert read["outcome"] == "0" and read["action"] == "R"
    assert read["agent"][0]["who"]["identifier"]["value"] == client_id
    entities = {e["role"]["code"]: e for e in read["entity"]}
    assert entities["4"]["what"]["reference"].startswith(f"Observation/{oid}")
    assert entities["1"]["what"]["reference"] == "Patient/p9"  # regulators find events by patient
    search = by_subtype["search"]
    query = next(e for e in search["entity"] if e["role"]["code"] == "24")
    assert "subject=Patient/p9" in query["description"]
    assert by_subtype["update"]["outcome"] == "4"


def test_auth_off_lets_everyone_in_but_still_audits(sqlite_store, capsys):
    from authkit import AuthServer

    server = AuthServer(sqlite_store, auth=False)
    try:
        assert "AUTHENTICATION IS DISABLED" in capsys.readouterr().err
        patients(server.store, "p1")
        created = server.request("POST", "Observation", json=observation())
        assert created.status_code == 201
        events = server.audit_events()
        assert events and events[-1]["agent"][0]["who"]["display"].startswith("anonymous")
    finally:
        server.close()


def test_auth_off_refuses_to_listen_beyond_loopback(sqlite_store):
    from app import create_app
    from fhir_server.config import load_config

    with pytest.raises(RuntimeError, match="local development only"):
        create_app(load_config(environ={}, auth=False, scheduler=False, host="0.0.0.0"), store=sqlite_store)


def test_audit_events_reach_the_store_through_the_dispatcher_and_regulators_search_them(live):
    from kit.outbox import drain

    token = live.client_token("system/Observation.cruds")
    patients(live.store, "p7")
    oid = live.request("POST", "Observation", token, json=observation("p7")).json()["id"]
    assert live.request("GET", f"Observation/{oid}", token).status_code == 200
    assert live.request("GET", "Patient?_count=1", token).status_code == 403
    drain(live.app)
    regulator = live.client_token("system/AuditEvent.rs")
    found = live.request("GET", "AuditEvent?_count=100", regulator).json()
    events = [e["resource"] for e in found["entry"]]
    subtypes = {e["subtype"][0]["code"] for e in events}
    assert {"create", "read", "search"} <= subtypes
    assert any(e["outcome"] == "4" and "403" in e["outcomeDesc"] for e in events)
    one = events[0]
    assert live.request("DELETE", f"AuditEvent/{one['id']}", live.client_token("system/*.cruds")).status_code == 405
    # a redelivered outbox event does not write a second version
    from auth.audit import store_audit_events

    stored = live.store.read("AuditEvent", one["id"])
    facts = {"interaction": "read", "status": 200, "recorded": one["recorded"], "server_base": live.base,
             "event_id": one["id"]}
    store_audit_events(live.store, [{"kind": "audit", "facts": facts}])
    assert live.store.read("AuditEvent", one["id"]).version == stored.version == 1


def test_batch_entries_are_decided_one_by_one(live):
    admin = live.client_token("system/*.cruds")
    pid = live.request("POST", "Patient", admin, json={"resourceType": "Patient"}).json()["id"]
    token = live.client_token("system/Observation.cruds")
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"resource": observation(pid), "request": {"method": "POST", "url": "Observation"}},
            {"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}},
            {"request": {"method": "GET", "url": f"Patient/{pid}"}},
        ],
    }
    response = live.request("POST", "", token, json=batch)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"] for e in response.json()["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("403") and statuses[2].startswith("403")
    transaction = {**batch, "type": "transaction", "entry": batch["entry"][:2]}
    refused = live.request("POST", "", token, json=transaction)
    assert refused.status_code == 403
    events = [e for e in live.audit_events() if e["subtype"][0]["code"] == "create"]
    assert any(e["outcome"] == "4" for e in events) and any(e["outcome"] == "0" for e in events)


def _observations_in_one_transaction(live, n: int) -> tuple[str, list[str], list[dict]]:
    """POST a transaction of ``n`` Observation creates for a new Patient: (patient id, the created
    ``Observation/id`` in order, the create AuditEvents that name Observations)."""
    token = live.client_token("system/*.cruds")
    pid = live.request("POST", "Patient", token, json={"resourceType": "Patient"}).json()["id"]
    entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": observation(pid),
                "request": {"method": "POST", "url": "Observation"}} for i in range(n)]
    response = live.request("POST", "", token, json={"resourceType": "Bundle", "type": "transaction",
                                                     "entry": entries})
    assert response.status_code == 200, response.text
    created = [e["response"]["location"].split("/_history")[0] for e in response.json()["entry"]]
    events = [e for e in live.audit_events() if e["subtype"][0]["code"] == "create"
              and "Observation/" in str(e.get("entity"))]
    return pid, created, events


def _named(event: dict) -> list[str]:
    """The resources an AuditEvent names (role 4, Domain Resource), without their version."""
    return [e["what"]["reference"].split("/_history")[0] for e in event["entity"] if e["role"]["code"] == "4"]


def test_a_transaction_is_one_audit_event_naming_every_entry(live):
    pid, created, events = _observations_in_one_transaction(live, 30)
    assert len(events) == 1
    AuditEvent.model_validate(events[0])
    assert set(_named(events[0])) == set(created) and len(created) == 30
    patients = [e["what"]["reference"] for e in events[0]["entity"] if e["role"]["code"] == "1"]
    assert patients == [f"Patient/{pid}"]
    # a REST create is decided before its id exists; its event still names what was created
    assert any(f"Patient/{pid}/_history/1" in str(e.get("entity")) for e in live.audit_events()
               if e["subtype"][0]["code"] == "create")


def test_a_large_transaction_names_each_created_resource_once_across_its_events(live, monkeypatch):
    import auth.request_audit

    monkeypatch.setattr(auth.request_audit, "MAX_TARGETS_PER_EVENT", 7)
    _, created, events = _observations_in_one_transaction(live, 30)
    assert len(events) == 5 and all(len(_named(event)) <= 7 for event in events)
    assert sorted(name for event in events for name in _named(event)) == sorted(created)


def test_includes_never_leak_what_the_scopes_hide(live):
    admin = live.client_token("system/*.cruds")
    pid = live.request("POST", "Patient", admin, json={"resourceType": "Patient"}).json()["id"]
    live.request("POST", "Observation", admin, json=observation(pid))
    token = live.client_token("system/Observation.rs")
    found = live.request("GET", "Observation?_include=Observation:subject", token).json()
    types = {e["resource"]["resourceType"] for e in found.get("entry", [])}
    assert types == {"Observation"}
    both = live.client_token("system/Observation.rs system/Patient.rs")
    found = live.request("GET", "Observation?_include=Observation:subject", both).json()
    assert {e["resource"]["resourceType"] for e in found["entry"]} == {"Observation", "Patient"}


def test_export_needs_system_scopes(live):
    headers = {"Prefer": "respond-async"}
    patient_bound = live.client_token("patient/*.rs", patient="p1")
    assert live.request("GET", "$export", patient_bound, headers=headers).status_code == 403
    assert live.request("GET", "Patient/$export", patient_bound, headers=headers).status_code == 403
    writer = live.client_token("system/Observation.c")
    assert live.request("GET", "$export", writer, headers=headers).status_code == 403
    reader = live.client_token("system/*.rs")
    assert live.request("GET", "$export", reader, headers=headers).status_code == 202


def test_granular_scope_filters_reads_and_searches(live):
    category = "http://terminology.hl7.org/CodeSystem/observation-category"
    admin = live.client_token("system/*.cruds")
    patients(live.store, "p1")

    def obs(code: str) -> str:
        body = {**observation(), "category": [{"coding": [{"system": category, "code": code}]}]}
        return live.request("POST", "Observation", admin, json=body).json()["id"]

    lab, vital = obs("laboratory"), obs("vital-signs")
    token = live.client_token(f"system/Observation.rs?category={category}|laboratory")
    assert live.request("GET", f"Observation/{lab}", token).status_code == 200
    assert live.request("GET", f"Observation/{vital}", token).status_code == 403
    found = live.request("GET", "Observation", token).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == [lab]


def test_a_patient_scope_cannot_take_another_patients_resource_by_rewriting_it(live):
    admin = live.client_token("system/*.cruds")
    patients(live.store, "p1", "p2")
    theirs = live.request("POST", "Observation", admin, json=observation("p2")).json()["id"]
    mine = live.request("POST", "Observation", admin, json=observation("p1")).json()["id"]
    token = live.client_token("patient/Observation.rus", patient="p1")
    hijack = live.request("PUT", f"Observation/{theirs}", token, json={**observation("p1"), "id": theirs})
    assert hijack.status_code == 403
    assert live.request("GET", f"Observation/{theirs}", admin).json()["subject"]["reference"] == "Patient/p2"
    own = live.request("PUT", f"Observation/{mine}", token, json={**observation("p1"), "id": mine, "status": "amended"})
    assert own.status_code == 200
    put = {"method": "PUT", "url": f"Observation/{theirs}"}
    batch = {"resourceType": "Bundle", "type": "batch",
             "entry": [{"resource": {**observation("p1"), "id": theirs}, "request": put}]}
    entry = live.request("POST", "", token, json=batch).json()["entry"][0]
    assert entry["response"]["status"].startswith("403")
