"""Subscriptions end to end, authentication on: real tokens, the app on loopback with its scheduler,
a real HTTP receiver. A subscriber receives exactly what matches its criteria and its client may read."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kit.stores import make_store

from fhir_server.subscriptions.acceptance import OWNER_URL, owner_of
from tests.access.authkit import AuthServer, observation, patients
from tests.subscriptions.hookkit import Receiver, settled, subscription

BP = "85354-9"  # blood pressure panel: what the subscriptions ask for
WEIGHT = "29463-7"
CRITERIA = f"Observation?code=http://loinc.org|{BP}"


def _obs(patient: str, code: str, value: float = 72.0) -> dict:
    body = observation(patient)
    body["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
    body["valueQuantity"]["value"] = value
    return body


@pytest.fixture(params=["sqlite", "mongomock"])
def live(request: pytest.FixtureRequest, tmp_path) -> Iterator[AuthServer]:
    store = make_store(request.param, tmp_path)
    patients(store, "p1", "p2", "X", "Y")  # the Observations' subjects
    server = AuthServer(store, scheduler=True, dispatcher_interval_s=0.05)
    yield server
    server.app.extensions["relais_scheduler"].shutdown(wait=True)
    server.close()
    store.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    yield hook
    hook.close()


def _drained(live: AuthServer) -> None:
    """Every outbox event handled: resource events matched, deliveries sent, audits stored."""
    settled(live.store)


def _subscribe(live: AuthServer, token: str, body: dict) -> dict:
    response = live.request("POST", "Subscription", token, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_subscriber_receives_exactly_the_matching_observations(live, receiver):
    a_id, a_key = live.add_client("system/Observation.rs system/Subscription.cruds")
    a = live.token(a_id, a_key)
    b = live.client_token("system/Observation.cruds")
    # a claimed owner in the body is replaced by the client that writes it
    claim = {"url": OWNER_URL, "valueIdentifier": {"system": "urn:relais:oauth-client", "value": "someone-else"}}
    created = _subscribe(live, a, subscription(receiver.url, CRITERIA, extension=[claim],
                                               channel={"header": ["X-Hook-Secret: s3cret"]}))
    assert created["status"] == "active" and owner_of(created) == a_id
    started = time.monotonic()
    ids = []
    for patient, code in [("p1", BP), ("p1", WEIGHT), ("p2", BP), ("p2", WEIGHT)]:
        response = live.request("POST", "Observation", b, json=_obs(patient, code))
        assert response.status_code == 201
        ids.append((response.json()["id"], code))
    got = receiver.wait_for(2)
    _drained(live)
    got = receiver.snapshot()
    matching = sorted(i for i, code in ids if code == BP)
    assert sorted(r.path.rsplit("/", 1)[1] for r in got) == matching
    for r in got:
        assert r.method == "PUT" and r.path.startswith("/hook/Observation/")
        assert r.headers["X-Hook-Secret"] == "s3cret"
        assert r.headers["Content-Type"].startswith("application/fhir+json")
        assert r.resource()["code"]["coding"][0]["code"] == BP
    print(f"write -> receiver: {max(r.at for r in got) - started:.3f} s for 4 writes, 2 deliveries")
    # an update that still matches is delivered again, with its new version
    first = live.request("GET", f"Observation/{matching[0]}", b).json()
    first["valueQuantity"]["value"] = 80.0
    assert live.request("PUT", f"Observation/{matching[0]}", b, json=first).status_code == 200
    again = receiver.wait_for(3)[-1].resource()
    assert again["id"] == matching[0] and again["meta"]["versionId"] == "2"
    # each delivery is in the audit trail, agent: the subscriber's client
    _drained(live)
    notices = [v.resource for v in _audit_events(live) if v.resource["subtype"][0]["display"]
               == "subscription-notification"]
    assert len(notices) == 3
    assert {n["agent"][0]["who"]["identifier"]["value"] for n in notices} == {a_id}
    assert {n["entity"][0]["what"]["reference"].split("/_history")[0] for n in notices} == {
        f"Observation/{i}" for i in matching}


def _audit_events(live: AuthServer) -> list:
    out, after = [], None
    while page := live.store.scan("AuditEvent", after, 500):
        out.extend(page)
        after = page[-1].id
    return out


def test_patient_and_granular_scopes_receive_only_their_patient(live, receiver):
    b = live.client_token("system/Observation.cruds")
    patient_id, patient_key = live.add_client("patient/Observation.rs system/Subscription.cruds", patient="X")
    granular_id, granular_key = live.add_client("system/Observation.rs?subject=Patient/X system/Subscription.cruds")
    other = Receiver()
    try:
        _subscribe(live, live.token(patient_id, patient_key), subscription(receiver.url, CRITERIA))
        _subscribe(live, live.token(granular_id, granular_key), subscription(other.url, CRITERIA, payload=None))
        written = {}
        for patient in ("Y", "X", "Y"):
            response = live.request("POST", "Observation", b, json=_obs(patient, BP))
            written[response.json()["id"]] = patient
        receiver.wait_for(1)
        other.wait_for(1)
        _drained(live)
        got = receiver.snapshot()
        assert [r.resource()["subject"]["reference"] for r in got] == ["Patient/X"]
        # without channel.payload: a POST to the endpoint with no body
        assert [(r.method, r.path, r.body) for r in other.snapshot()] == [("POST", "/hook", b"")]
    finally:
        other.close()


def test_refusals_at_creation(live, receiver):
    a = live.client_token("system/Observation.rs system/Subscription.cruds")
    cases = [
        (subscription(receiver.url, "Observation?no-such-param=1"), 422, "no-such-param"),
        (subscription(receiver.url, "Nothing?code=1"), 422, "Nothing"),
        (subscription(receiver.url, "Observation?date=notadate"), 422, "date"),
        (subscription(receiver.url, CRITERIA, channel={"type": "email"}), 422, "rest-hook"),
        (subscription(receiver.url, CRITERIA, channel={"type": "websocket"}), 422, "rest-hook"),
        (subscription(receiver.url, CRITERIA, payload="application/fhir+xml"), 422, "payload"),
        (subscription("ftp://127.0.0.1/x", CRITERIA), 422, "endpoint"),
        (subscription(receiver.url, CRITERIA, channel={"header": ["X-A: b\r\nX-Injected: 1"]}), 422, "header"),
        (subscription(receiver.url, "AuditEvent?action=R"), 422, "AuditEvent"),
        (subscription(receiver.url, "Patient?name=x"), 403, "Patient"),  # no read scope on Patient
    ]
    for body, status, words in cases:
        response = live.request("POST", "Subscription", a, json=body)
        assert response.status_code == status, (body, response.text)
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert words in outcome["issue"][0]["diagnostics"], outcome
    # no read scope on the criteria's type at all
    only_subscriptions = live.client_token("system/Subscription.cruds")
    response = live.request("POST", "Subscription", only_subscriptions, json=subscription(receiver.url, CRITERIA))
    assert response.status_code == 403 and "Observation" in response.json()["issue"][0]["diagnostics"]
    # a PUT, a PATCH and a transaction Bundle go through the same checks
    assert live.request("PUT", "Subscription/s1", a, json={**subscription(receiver.url, "Observation?x=1"),
                                                            "id": "s1"}).status_code == 422
    ok = _subscribe(live, a, subscription(receiver.url, CRITERIA))
    patch = [{"op": "replace", "path": "/channel/type", "value": "sms"}]
    response = live.request("PATCH", f"Subscription/{ok['id']}", a, json=patch,
                            headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 422, response.text
    entries = [
        {"resource": _obs("p1", BP), "request": {"method": "POST", "url": "Observation"}},
        {"resource": subscription(receiver.url, CRITERIA, channel={"type": "email"}),
         "request": {"method": "POST", "url": "Subscription"}},
    ]
    b = live.client_token("system/Observation.cruds system/Subscription.cruds")
    if live.store.supports_transactions:
        response = live.request("POST", "", b, json={"resourceType": "Bundle", "type": "transaction",
                                                      "entry": entries})
        assert response.status_code == 422 and "entry[1]" in response.text, response.text
        assert live.request("GET", "Observation", a).json().get("total", 0) == 0  # all or nothing
    else:  # mongomock: no transactions, a batch reports each entry
        response = live.request("POST", "", b, json={"resourceType": "Bundle", "type": "batch", "entry": entries})
        statuses = [e["response"]["status"] for e in response.json()["entry"]]
        assert statuses[0].startswith("201") and statuses[1].startswith("422"), statuses


def test_off_and_past_end_deliver_nothing(live, receiver):
    a = live.client_token("system/Observation.rs system/Subscription.cruds")
    b = live.client_token("system/Observation.cruds")
    off = _subscribe(live, a, {**subscription(receiver.url, CRITERIA), "status": "off"})
    assert off["status"] == "off"
    _subscribe(live, a, {**subscription(receiver.url, CRITERIA), "end": "2020-01-01T00:00:00Z"})
    live.request("POST", "Observation", b, json=_obs("p1", BP))
    _drained(live)
    assert receiver.snapshot() == []
    # turned on by its client: deliveries start (the index follows the change)
    off["status"] = "requested"
    assert live.request("PUT", f"Subscription/{off['id']}", a, json=off).json()["status"] == "active"
    live.request("POST", "Observation", b, json=_obs("p1", BP))
    assert len(receiver.wait_for(1)) == 1


def test_a_disabled_client_receives_nothing_more(live, receiver):
    a_id, a_key = live.add_client("system/Observation.rs system/Subscription.cruds")
    b = live.client_token("system/Observation.cruds")
    _subscribe(live, live.token(a_id, a_key), subscription(receiver.url, CRITERIA))
    live.request("POST", "Observation", b, json=_obs("p1", BP))
    receiver.wait_for(1)
    live.clients.set_enabled(a_id, False)
    live.request("POST", "Observation", b, json=_obs("p1", BP))
    _drained(live)
    assert len(receiver.snapshot()) == 1
