"""Delivering topic-based notifications on a bad day: an endpoint down (retried with backoff, in order,
batched up to maxCount), down for longer than RELAIS_RESTHOOK_RETRY_HOURS (the Subscription in error,
with the reason), heartbeats to an idle Subscription, a Subscription past its end turned off, and
``channel.header`` shown to the owner only. The outbox and the courier are driven from the test."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from kit.live import serve
from kit.ports import free_port
from kit.stores import make_store

from fhir_server.subscriptions import lanes
from tests.access.authkit import AuthServer, patients
from tests.subscriptions.hookkit import Receiver, poll, subscription
from tests.subscriptions.topickit import MEASURE, deliver, events_of, notices, topic_subscription, vital_sign


@pytest.fixture(autouse=True)
def retries_due_at_once(monkeypatch):
    monkeypatch.setattr(lanes, "FIRST_RETRY_S", 0.0)


def _live(tmp_path, kind: str = "sqlite", **settings):
    store = make_store(kind, tmp_path, durable=False)
    live = serve(store, **settings)
    live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    deliver(live.app)
    return live


def _close(live) -> None:
    live.close()
    live.store.close()


@pytest.mark.parametrize("kind", ["sqlite", "mongomock"])
def test_an_endpoint_down_gets_everything_in_order_once_back_batched_by_max_count(tmp_path, kind):
    live = _live(tmp_path, kind)
    port = free_port()
    try:
        live.post("Subscription", topic_subscription(f"http://127.0.0.1:{port}/hook", MEASURE, max_count=2))
        ids = [live.post("Observation", vital_sign(value=60 + i)).json()["id"] for i in range(5)]
        deliver(live.app)  # refused: kept, retried
        receiver = Receiver(port=port)
        try:
            deliver(live.app)
            got = notices(receiver)
            assert [n.type for n in got] == ["handshake"] + ["event-notification"] * 3
            assert [n.numbers for n in got[1:]] == [[1, 2], [3, 4], [5]]
            assert [f.rsplit("/", 1)[1] for n in got for f in n.focus] == ids
        finally:
            receiver.close()
    finally:
        _close(live)


def test_an_endpoint_down_past_the_retry_hours_puts_the_subscription_in_error_until_turned_back_on(tmp_path):
    live = _live(tmp_path, resthook_retry_hours=0.0002)  # 0.72 s
    port = free_port()
    try:
        sub = live.post("Subscription", topic_subscription(f"http://127.0.0.1:{port}/hook", MEASURE)).json()
        live.post("Observation", vital_sign())

        def errored():
            deliver(live.app, rounds=1)
            return live.get(f"Subscription/{sub['id']}").json()["status"] == "error"

        poll(errored, 20, "Subscription in error")
        stored = live.get(f"Subscription/{sub['id']}").json()
        assert "kept failing" in stored["error"] and "cannot connect" in stored["error"]
        status = live.get(f"Subscription/{sub['id']}/$status").json()["entry"][0]["resource"]
        assert {p["name"]: p for p in status["parameter"]}["status"]["valueCode"] == "error"
        # its event is still there to fetch
        events = live.get(f"Subscription/{sub['id']}/$events").json()
        assert len(events["entry"]) == 2
        # the client turns it back on once its endpoint is back: a handshake, then numbering goes on
        receiver = Receiver(port=port)
        try:
            assert live.put(f"Subscription/{sub['id']}", {**stored, "status": "requested"}).json()["status"] == "active"
            live.post("Observation", vital_sign())
            deliver(live.app)
            got = notices(receiver)
            assert [n.type for n in got] == ["handshake", "event-notification"]
            assert got[1].numbers == [2]  # numbering goes on from before the error
        finally:
            receiver.close()
    finally:
        _close(live)


def test_an_idle_subscription_gets_heartbeats(tmp_path):
    live = _live(tmp_path)
    receiver = Receiver()
    try:
        live.post("Subscription", topic_subscription(receiver.url, MEASURE, heartbeat=1))

        def beat():
            deliver(live.app, rounds=1)
            return [n for n in notices(receiver) if n.type == "heartbeat"]

        beats = poll(beat, 20, "heartbeat")
        assert beats[0].numbers == [] and beats[0].since_start == 0
    finally:
        receiver.close()
        _close(live)


def test_a_subscription_past_its_end_is_turned_off(tmp_path):
    live = _live(tmp_path)
    receiver = Receiver()
    try:
        end = (datetime.now(UTC) + timedelta(seconds=2)).isoformat()
        topic = live.post("Subscription", topic_subscription(receiver.url, MEASURE, end=end)).json()
        classic = live.post("Subscription", {**subscription(receiver.url, "Observation?code=http://loinc.org|8867-4"),
                                             "end": end}).json()

        def off():
            deliver(live.app, rounds=1)
            return all(live.get(f"Subscription/{s['id']}").json()["status"] == "off" for s in (topic, classic))

        poll(off, 20, "Subscriptions off")
        live.post("Observation", vital_sign())
        deliver(live.app)
        assert events_of(receiver) == [] and all(r.path == "/hook" for r in receiver.snapshot())
    finally:
        receiver.close()
        _close(live)


def test_channel_header_is_shown_to_its_owner_only(tmp_path):
    store = make_store("sqlite", tmp_path, durable=False)
    patients(store, "p1")
    live = AuthServer(store)
    receiver = Receiver()
    try:
        owner = live.client_token("system/Subscription.cruds system/Observation.cruds")
        other = live.client_token("system/Subscription.rs")
        body = topic_subscription(receiver.url, MEASURE, header=["Authorization: Bearer s3cret", "X-Tenant: 42"])
        created = live.request("POST", "Subscription", owner, json=body)
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert created.json()["channel"]["header"] == ["Authorization: Bearer s3cret", "X-Tenant: 42"]
        mine = live.request("GET", f"Subscription/{sid}", owner).json()
        assert mine["channel"]["header"] == ["Authorization: Bearer s3cret", "X-Tenant: 42"]
        theirs = live.request("GET", f"Subscription/{sid}", other).json()
        assert theirs["channel"]["header"] == ["Authorization: ****", "X-Tenant: ****"]
        found = live.request("GET", "Subscription", other).json()
        assert [e["resource"]["channel"]["header"] for e in found["entry"]] == [["Authorization: ****",
                                                                                  "X-Tenant: ****"]]
        history = live.request("GET", f"Subscription/{sid}/_history", other).json()
        assert "s3cret" not in str(history)
        # the endpoint itself gets the real header
        live.request("POST", "Observation", owner, json=vital_sign())
        deliver(live.app)
        got = events_of(receiver)
        assert got and got[0].headers.get("Authorization") == "Bearer s3cret"
    finally:
        receiver.close()
        live.close()
        store.close()


def test_deliveries_are_audited(tmp_path):
    live = _live(tmp_path)
    receiver = Receiver()
    try:
        sub = live.post("Subscription", topic_subscription(receiver.url, MEASURE)).json()
        live.post("Observation", vital_sign())
        deliver(live.app)
        poll(lambda: len(events_of(receiver)) == 1, 10, "notification")
        deliver(live.app)
        found = live.get("AuditEvent", params={"entity": f"Subscription/{sub['id']}"}).json()
        assert any("rest-hook notification" in (e["resource"].get("outcomeDesc") or "") for e in found.get("entry", []))
    finally:
        receiver.close()
        _close(live)


def test_time_moves_on_between_two_attempts(tmp_path, monkeypatch):
    """With the real backoff, a failed head waits its turn: the lane is not tried again before it is due."""
    monkeypatch.setattr(lanes, "FIRST_RETRY_S", 2.0)
    live = _live(tmp_path)
    port = free_port()
    try:
        live.post("Subscription", topic_subscription(f"http://127.0.0.1:{port}/hook", MEASURE))
        deliver(live.app, rounds=1)
        receiver = Receiver(port=port)
        try:
            deliver(live.app, rounds=1)
            assert notices(receiver) == []  # due 2 s after the failure
            time.sleep(2.1)  # the backoff itself is what is tested: wait it out
            deliver(live.app, rounds=1)
            assert [n.type for n in notices(receiver)] == ["handshake"]
        finally:
            receiver.close()
    finally:
        _close(live)
