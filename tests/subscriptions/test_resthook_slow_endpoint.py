"""A criteria-based (R4) Subscription whose endpoint hangs (10 s per answer) delays neither another criteria-based
Subscription's notifications nor the audit trail: their deliveries go through the courier's per-endpoint lanes,
off the dispatcher's thread, as topic-based ones do. The scheduler runs, as in production."""

from __future__ import annotations

import time

from kit.live import serve
from kit.stores import make_store

from tests.subscriptions.hookkit import Receiver, audit_trail_caught_up, poll, subscription
from tests.subscriptions.topickit import Hanging, stop_background, vital_sign

HEART_RATE = "Observation?code=http://loinc.org|8867-4"


def test_a_hanging_endpoint_delays_neither_the_other_subscription_nor_the_audit_trail(tmp_path):
    store = make_store("sqlite", tmp_path, durable=False)
    live = serve(store, scheduler=True, dispatcher_interval_s=0.05, resthook_timeout_s=10)
    hanging, answering = Hanging(), Receiver()  # the server waits 10 s for its answer, then retries
    try:
        live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
        for endpoint, payload in ((hanging.url, None), (answering.url, "application/fhir+json")):
            assert live.post("Subscription", subscription(endpoint, HEART_RATE, payload=payload)).status_code == 201
        first = live.post("Observation", vital_sign()).json()["id"]
        poll(lambda: hanging.arrived >= 1, 10, "the first notification held by the hanging endpoint")
        answering.wait_for(1, 5)
        started = time.monotonic()
        ids = [live.post("Observation", vital_sign(value=60 + i)).json()["id"] for i in range(20)]
        got = answering.wait_for(21, 10)
        took = time.monotonic() - started
        print(f"21 notifications at the answering endpoint {took:.2f} s after the writes began")
        # each notification once, in the order of the writes, as R4 rest-hook has it (PUT of the resource)
        assert [r.path.rsplit("/", 1)[1] for r in got] == [first, *ids]
        assert {r.method for r in got} == {"PUT"}
        # sharing the dispatcher's thread, they waited for the hanging one's timeout (5.1 s measured before)
        assert took < 4, took
        assert hanging.arrived == 1  # still holding the first request, the rest waits in its lane
        # the audit trail: every write's AuditEvent stored meanwhile
        audit_trail_caught_up(live, f"Observation/{ids[-1]}")
        assert hanging.arrived == 1
    finally:
        hanging.close()
        answering.close()
        stop_background(live)
        live.close()
        store.close()


def test_an_endpoint_that_times_out_is_retried_after_its_backoff_counted_from_the_timeout(tmp_path):
    store = make_store("sqlite", tmp_path, durable=False)
    live = serve(store, scheduler=True, dispatcher_interval_s=0.05, resthook_timeout_s=1)
    hanging = Hanging()
    try:
        live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
        assert live.post("Subscription", subscription(hanging.url, HEART_RATE, payload=None)).status_code == 201
        live.post("Observation", vital_sign())
        poll(lambda: hanging.arrived >= 2, 10, "the notification tried again")
        # 1 s waiting for an answer, then the first retry's 2 s: not at once when the wait ends
        assert hanging.times[1] - hanging.times[0] >= 1 + 2 - 0.1, hanging.times
    finally:
        hanging.close()
        stop_background(live)
        live.close()
        store.close()
