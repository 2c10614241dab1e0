"""The write path takes its actor: pure access decisions, writes with no Flask context, internal actors.

Nothing here builds a Flask app or opens an application context: jobs that run from the outbox call
``write`` and the decisions exactly as these tests do.
"""

from __future__ import annotations

import flask
import pytest

import auth
from auth.audit import CLIENT_ID_SYSTEM, OUTBOX_KIND, store_audit_events
from auth.clients import ClientRegistry
from fhir_server import write
from fhir_server.actor import SERVER, Actor
from fhir_server.subscriptions.acceptance import owner_of
from fhir_server.subscriptions.hook import Acceptance


def _observation(patient: str, id: str | None = None) -> dict:
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": f"Patient/{patient}"}, "valueQuantity": {"value": 72, "unit": "kg"}}
    return {**body, "id": id} if id else body


def _drain_audit(store) -> None:
    """Hand every audit event of the outbox to its handler, as the dispatcher does."""
    while events := store.outbox_claim("test", 60, 100):
        store_audit_events(store, [e.payload for e in events if e.payload.get("kind") == OUTBOX_KIND])
        store.outbox_done([e.id for e in events])


def test_an_update_of_another_patients_resource_is_refused_given_the_version_it_replaces():
    me = auth.Caller("c", ("patient/Observation.rus",), patient="p1")
    rewritten = _observation("p1", id="o1")  # the new body names my patient...
    theirs = _observation("p2", id="o1")  # ...the stored one is another patient's
    assert auth.needs_replaced(me, "update", "Observation")
    why = auth.refusal(me, "update", "Observation", rewritten, replaced=theirs)
    assert why is not None and "Observation/o1" in why
    assert auth.refusal(me, "update", "Observation", rewritten, replaced=_observation("p1", id="o1")) is None
    assert auth.refusal(me, "update", "Observation", rewritten, replaced=None) is None  # update as create
    # not read at all: refused rather than guessed
    assert auth.refusal(me, "update", "Observation", rewritten) is not None
    # a client that sees every Observation needs no replaced version
    everything = auth.Caller("s", ("system/Observation.cruds",))
    assert not auth.needs_replaced(everything, "update", "Observation")
    assert auth.refusal(everything, "update", "Observation", rewritten) is None
    assert not flask.has_app_context()


def test_write_outside_any_app_accepts_a_subscription_owned_by_its_actor(store):
    assert not flask.has_app_context()
    actor = Actor("subscriber", ("system/Observation.rs", "system/Subscription.cruds"))
    asked = []

    def may_search(who, resource_type):
        asked.append((who.client_id, resource_type))
        return auth.refusal(who, "search", resource_type)

    acceptance = Acceptance(allowed_endpoints=("https://partner.example/",), may_search=may_search)
    body = {"resourceType": "Subscription", "status": "requested", "reason": "r",
            "criteria": "Observation?code=http://loinc.org|85354-9",
            "channel": {"type": "rest-hook", "endpoint": "https://partner.example/hook"}}
    [result] = write.write(store, [write.Change(write.CREATE, "Subscription", resource=body)], actor,
                           acceptance=acceptance)
    stored = result.version.resource
    assert owner_of(stored) == "subscriber" and stored["status"] == "active"
    assert asked == [("subscriber", "Observation")]
    # the same checks whoever writes: an endpoint outside the allowed prefixes, a type it may not search
    elsewhere = {**body, "channel": {"type": "rest-hook", "endpoint": "https://evil.example/hook"}}
    with pytest.raises(write.FHIRError) as refused:
        write.write(store, [write.Change(write.CREATE, "Subscription", resource=elsewhere)], actor,
                    acceptance=acceptance)
    assert refused.value.status == 422
    with pytest.raises(write.FHIRError) as refused:
        write.write(store, [write.Change(write.CREATE, "Subscription", resource={**body, "criteria": "Patient?"})],
                    actor, acceptance=acceptance)
    assert refused.value.status == 403
    # a way in without the app's acceptance takes no Subscription; the server's own write keeps the owner
    with pytest.raises(write.FHIRError):
        write.write(store, [write.Change(write.CREATE, "Subscription", resource=body)], actor)
    changed = {**stored, "status": "error", "error": "failing"}
    [again] = write.write(store, [write.Change(write.UPDATE, "Subscription", id=stored["id"], resource=changed)],
                          SERVER)
    assert owner_of(again.version.resource) == "subscriber"


def test_an_internal_actor_writes_without_flask_and_is_the_agent_of_its_audit_events(store):
    registry = ClientRegistry(store)
    registry.add_internal("relais-triage", ["system/Observation.cru", "system/Task.cru"])
    triage = auth.internal_actor(store, "relais-triage")
    assert triage.kind == "internal" and triage.scopes == ("system/Observation.cru", "system/Task.cru")
    observation = _observation("p1")
    assert auth.refusal(triage, "create", "Observation", observation) is None
    patient = {"resourceType": "Patient", "id": "p1"}
    write.write(store, [write.Change(write.UPDATE, "Patient", id="p1", resource=patient)], SERVER)
    results = write.write(store, [write.Change(write.CREATE, "Observation", resource=observation)], triage)
    auth.audit_write(store, triage, results, "http://relais.example/fhir")
    assert not flask.has_app_context()
    _drain_audit(store)
    [event] = store.scan("AuditEvent", None, 10)
    agent = event.resource["agent"][0]["who"]
    assert agent["identifier"] == {"system": CLIENT_ID_SYSTEM, "value": "relais-triage"}
    entities = [e["what"]["reference"] for e in event.resource["entity"]]
    assert f"Observation/{results[0].id}/_history/1" in entities and "Patient/p1" in entities
    assert event.resource["subtype"][0]["code"] == "create"
    # a refusal comes from the pure decision: no scope on Condition, none for another kind of client
    assert "Condition" in auth.refusal(triage, "create", "Condition", {"resourceType": "Condition"})
    with pytest.raises(LookupError):
        auth.internal_actor(store, "relais-predmp")  # not registered
    registry.set_enabled("relais-triage", False)
    assert auth.refusal(auth.internal_actor(store, "relais-triage"), "create", "Observation", observation)


def test_an_internal_actor_is_registered_like_a_client_but_holds_no_credentials(store):
    registry = ClientRegistry(store)
    client = registry.add_internal("relais-predmp", ["system/*.rs"])
    assert client.internal and client.secret_hash is None and client.jwks is None and client.jwks_url is None
    assert [c.client_id for c in registry.list()] == ["relais-predmp"]
    assert not client.check_client_secret("")
    assert not client.check_grant_type("client_credentials")
    assert not any(client.check_endpoint_auth_method(m, "token") for m in ("client_secret_basic", "private_key_jwt"))
    with pytest.raises(ValueError):
        registry.add_internal("someone", ["system/*.rs"])
    with pytest.raises(ValueError):
        registry.add_internal("relais-triage", ["patient/*.rs"])
