"""One endpoint that hangs (answers after 10 s, or never) delays neither another endpoint, nor the audit
trail, nor triage: deliveries leave the dispatcher's thread for the courier's workers. The scheduler
runs, as in production."""

from __future__ import annotations

import time

from kit.live import serve
from kit.stores import make_store

from tests.subscriptions.hookkit import Receiver, audit_trail_caught_up, poll
from tests.subscriptions.topickit import MEASURE, Hanging, events_of, stop_background, topic_subscription, vital_sign
from tests.triage.triagekit import blood_pressure


def test_a_hanging_endpoint_delays_neither_the_other_endpoint_nor_the_audit_trail_nor_triage(tmp_path):
    store = make_store("sqlite", tmp_path, durable=False)
    live = serve(store, scheduler=True, dispatcher_interval_s=0.05, resthook_timeout_s=10)
    hanging, answering = Hanging(), Receiver()
    try:
        live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
        for endpoint in (hanging.url, answering.url):
            assert live.post("Subscription", topic_subscription(endpoint, MEASURE)).status_code == 201
        poll(lambda: hanging.arrived >= 1, 10, "the handshake held by the hanging endpoint")
        started = time.monotonic()
        ids = [live.post("Observation", vital_sign(value=60 + i)).json()["id"] for i in range(20)]
        poll(lambda: sum(len(n.numbers) for n in events_of(answering)) >= 20, 8, "20 events at the answering one")
        took = time.monotonic() - started
        got = [n for notice in events_of(answering) for n in notice.numbers]
        assert sorted(set(got)) == list(range(1, 21))
        assert took < 8 and hanging.arrived == 1  # still holding the first request, the rest waits in its lane
        # the audit trail: every write's AuditEvent stored meanwhile
        audit_trail_caught_up(live, f"Observation/{ids[-1]}")
        # triage: a hypertensive crisis becomes a Task within a second or two, the endpoint still hanging
        crisis = live.post("Observation", blood_pressure(185, 95)).json()
        poll(lambda: live.get("Task", params={"focus": f"Observation/{crisis['id']}"}).json().get("total", 0) == 1,
             5, "the triage Task")
        assert hanging.arrived == 1
    finally:
        hanging.close()
        answering.close()
        stop_background(live)
        live.close()
        store.close()


def test_deliveries_in_flight_are_bounded_per_endpoint_and_in_all(tmp_path):
    store = make_store("sqlite", tmp_path, durable=False)
    live = serve(store, scheduler=True, dispatcher_interval_s=0.05, resthook_workers=2)
    endpoints = [Hanging(), Hanging(), Hanging()]
    try:
        live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
        # two Subscriptions to the first endpoint: one request at a time to it (RELAIS_RESTHOOK_ENDPOINT_IN_FLIGHT=1)
        for endpoint in (endpoints[0], endpoints[0], endpoints[1], endpoints[2]):
            assert live.post("Subscription", topic_subscription(endpoint.url, MEASURE)).status_code == 201
        poll(lambda: sum(e.arrived for e in endpoints) >= 2, 10, "two requests in flight")
        live.post("Observation", vital_sign())
        poll(lambda: live.store.outbox_pending() == 0, 10, "the write matched and filed")
        # two workers (RELAIS_RESTHOOK_WORKERS=2), each held by an endpoint that does not answer
        assert sum(e.arrived for e in endpoints) == 2 and endpoints[0].arrived <= 1
    finally:
        for endpoint in endpoints:
            endpoint.close()
        stop_background(live)
        live.close()
        store.close()
