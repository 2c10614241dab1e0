"""Deliveries that fail are kept and retried: a dead endpoint, one that answers 503, one that never comes back
(retried for RELAIS_RESTHOOK_RETRY_HOURS, then its Subscription in error).

The dispatcher and the courier are driven from the test (scheduler off, retries due at once) so every
attempt is visible; time passing is a lane's first failure moved back. The endpoint, the app and the
tokens are real.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from kit.ports import free_port
from kit.stores import make_store

from fhir_server import cli
from fhir_server.outbox import DEAD_LETTERS, MAX_ATTEMPTS, outbox_of
from fhir_server.subscriptions import courier, lanes
from fhir_server.subscriptions.settings import from_config
from tests.access.authkit import AuthServer, observation, patients
from tests.subscriptions.hookkit import Receiver, subscription

CRITERIA = "Observation?code=http://loinc.org|29463-7"


@pytest.fixture(autouse=True)
def retries_due_at_once(monkeypatch):
    monkeypatch.setattr(lanes, "FIRST_RETRY_S", 0.0)


@pytest.fixture(params=["sqlite", "mongomock"])
def live(request: pytest.FixtureRequest, tmp_path) -> Iterator[AuthServer]:
    store = make_store(request.param, tmp_path)
    patients(store, "p1", "p2", "p3")  # the Observations' subjects
    server = AuthServer(store)
    yield server
    server.close()
    store.close()


def _queued(store) -> list[tuple[str, str, dict]]:
    """Criteria-based deliveries waiting in the endpoints' lanes: (lane, key, entry)."""
    return [(lane, key, doc) for lane, _ in store.kv_list(lanes.LANES)
            for key, doc in store.kv_list(lanes.lane_table(lane)) if doc["kind"] == lanes.CRITERIA]


def _rest_hook_pending(store) -> int:
    return len(_queued(store))


def _failing_since(store, seconds_ago: float) -> None:
    """Time passes: the waiting deliveries first failed ``seconds_ago``."""
    for lane, key, doc in _queued(store):
        if doc["first_failure"] is not None:
            store.kv_put(lanes.lane_table(lane), key, {**doc, "first_failure": time.time() - seconds_ago})


def _dispatch(live: AuthServer, rounds: int = 1) -> None:
    outbox = outbox_of(live.app)
    deliveries = courier.for_store(live.store, from_config(live.app.config["RELAIS"]))
    for _ in range(rounds):
        outbox.drain(live.store)  # resource events matched, deliveries filed in their lanes
        deliveries.run_once()  # one attempt per lane (a failed head's retry is due at once)
        outbox.drain(live.store)  # the audits of what reached its endpoint


def _set_up(live: AuthServer, endpoint: str) -> tuple[str, str, dict]:
    a = live.client_token("system/Observation.rs system/Subscription.cruds")
    b = live.client_token("system/Observation.cruds")
    response = live.request("POST", "Subscription", a, json=subscription(endpoint, CRITERIA))
    assert response.status_code == 201, response.text
    return a, b, response.json()


def test_a_dead_endpoint_is_retried_until_it_answers(live):
    port = free_port()
    _, b, _ = _set_up(live, f"http://127.0.0.1:{port}/hook")
    created = live.request("POST", "Observation", b, json=observation("p1")).json()
    _dispatch(live, rounds=3)  # matched, queued, then refused connections three times
    assert _rest_hook_pending(live.store) == 1
    assert list(live.store.kv_list(DEAD_LETTERS)) == []
    # ten minutes later (past the outbox's 9 attempts, about 8 minutes), still retried
    _failing_since(live.store, 600)
    _dispatch(live, rounds=MAX_ATTEMPTS + 1)
    assert _rest_hook_pending(live.store) == 1 and _queued(live.store)[0][2]["attempts"] > MAX_ATTEMPTS
    assert list(live.store.kv_list(DEAD_LETTERS)) == []
    receiver = Receiver(port=port)
    try:
        _dispatch(live)
        got = receiver.snapshot()
        assert [r.path for r in got] == [f"/hook/Observation/{created['id']}"]
        assert _rest_hook_pending(live.store) == 0 and live.store.outbox_pending() == 0
    finally:
        receiver.close()


def test_an_endpoint_answering_503_gets_the_notification_again_and_once(live):
    receiver = Receiver(fail_first=2)
    try:
        _, b, _ = _set_up(live, receiver.url)
        for _ in range(3):
            live.request("POST", "Observation", b, json=observation("p1"))
        _dispatch(live, rounds=4)
        # the first request got 503; the endpoint's other deliveries in that batch waited for the retry
        assert receiver.refused == 2
        assert len(receiver.snapshot()) == 3 and len({r.path for r in receiver.snapshot()}) == 3
        assert live.store.outbox_pending() == 0 and list(live.store.kv_list(DEAD_LETTERS)) == []
    finally:
        receiver.close()


def test_a_delivery_failing_past_the_retry_hours_is_a_dead_letter_and_its_subscription_errors(live, monkeypatch,
                                                                                                 capsys):  # fmt: skip
    port = free_port()
    a, b, sub = _set_up(live, f"http://127.0.0.1:{port}/hook")
    created = live.request("POST", "Observation", b, json=observation("p1")).json()
    _dispatch(live, rounds=MAX_ATTEMPTS + 2)
    # past the outbox's 9 attempts, and failing for an hour: still retried, the Subscription active
    _failing_since(live.store, 3600)
    _dispatch(live)
    assert _rest_hook_pending(live.store) == 1 and list(live.store.kv_list(DEAD_LETTERS)) == []
    assert live.request("GET", f"Subscription/{sub['id']}", a).json()["status"] == "active"
    # failing for RELAIS_RESTHOOK_RETRY_HOURS (24): given up, kept as a dead letter, the Subscription in error
    _failing_since(live.store, 24 * 3600 + 1)
    _dispatch(live)
    assert _rest_hook_pending(live.store) == 0
    dead = [doc for _, doc in live.store.kv_list(DEAD_LETTERS)]
    assert [d["payload"]["kind"] for d in dead] == ["rest-hook"]
    assert dead[0]["payload"]["id"] == created["id"] and "cannot connect" in dead[0]["error"]
    stored = live.request("GET", f"Subscription/{sub['id']}", a).json()
    assert stored["status"] == "error" and created["id"] in stored["error"] and "24 h" in stored["error"]
    # in error, new matches are not queued; the client turns it back on (PUT status requested)
    live.request("POST", "Observation", b, json=observation("p2"))
    _dispatch(live)
    assert _rest_hook_pending(live.store) == 0
    receiver = Receiver(port=port)
    try:
        stored["status"] = "requested"
        assert live.request("PUT", f"Subscription/{sub['id']}", a, json=stored).json()["status"] == "active"
        third = live.request("POST", "Observation", b, json=observation("p3")).json()
        _dispatch(live)
        assert [r.path.rsplit("/", 1)[1] for r in receiver.snapshot()] == [third["id"]]
        # nothing lost: the operator puts the dead letter back, and it is delivered
        if hasattr(live.store, "path"):  # SQLite: the operator command, on the same file
            monkeypatch.setenv("RELAIS_STORE", f"sqlite:///{live.store.path}")
            with pytest.raises(SystemExit):
                cli.main(["outbox", "--retry", "all"])
            assert "back in the outbox" in capsys.readouterr().out
        else:
            for key, doc in list(live.store.kv_list(DEAD_LETTERS)):
                with live.store.transaction() as txn:
                    txn.outbox_append(doc["payload"])
                live.store.kv_delete(DEAD_LETTERS, key)
        _dispatch(live)
        assert sorted(r.path.rsplit("/", 1)[1] for r in receiver.snapshot()) == sorted([third["id"], created["id"]])
        assert json.loads(receiver.snapshot()[-1].body)["id"] == created["id"]
    finally:
        receiver.close()


def test_chained_criteria_follow_references_through_the_store(live):
    """``subject:Patient.identifier`` is matched as a search would: the subject is read from the store."""
    receiver = Receiver()
    try:
        admin = live.client_token("system/*.cruds")
        nir = "urn:oid:1.2.250.1.213.1.4.8|1850275123456"
        b = admin
        criteria = f"Observation?subject:Patient.identifier={nir}"
        assert live.request("POST", "Subscription", admin, json=subscription(receiver.url, criteria)).status_code == 201
        system, value = nir.split("|")
        ours = live.request("POST", "Patient", b, json={"resourceType": "Patient", "identifier": [
            {"system": system, "value": value}]}).json()["id"]
        theirs = live.request("POST", "Patient", b, json={"resourceType": "Patient"}).json()["id"]
        sent = [live.request("POST", "Observation", b, json=observation(p)).json()["id"] for p in (theirs, ours)]
        _dispatch(live)
        assert [r.path.rsplit("/", 1)[1] for r in receiver.snapshot()] == [sent[1]]
    finally:
        receiver.close()
