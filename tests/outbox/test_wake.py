"""A write wakes its process's dispatcher: a notification does not wait for the next poll."""

from __future__ import annotations

import time

from kit.live import serve
from kit.samples import observation

from tests.access.authkit import patients
from tests.subscriptions.hookkit import Receiver, subscription


def test_a_write_is_dispatched_long_before_the_next_poll(store):
    patients(store, "p1")
    # Polling alone would first look at the outbox after 60 s.
    live = serve(store, scheduler=True, dispatcher_interval_s=60)
    receiver = Receiver()
    try:
        created = live.post("Subscription", subscription(receiver.url, "Observation?code=http://loinc.org|29463-7"))
        assert created.status_code == 201 and created.json()["status"] == "active"
        started = time.monotonic()
        sent = live.post("Observation", observation()).json()
        got = receiver.wait_for(1, timeout_s=10)
        assert [r.path for r in got] == [f"/hook/Observation/{sent['id']}"]
        assert time.monotonic() - started < 10
    finally:
        receiver.close()
        live.app.extensions["relais_scheduler"].shutdown(wait=True)
        live.close()


def test_shutting_the_scheduler_down_stops_the_dispatcher_thread(store):
    live = serve(store, scheduler=True, dispatcher_interval_s=60)
    dispatcher = live.app.extensions["relais_dispatcher"]
    try:
        assert dispatcher.is_alive()
    finally:
        live.app.extensions["relais_scheduler"].shutdown(wait=True)  # waits for the thread to end
        live.close()
    assert not dispatcher.is_alive()
