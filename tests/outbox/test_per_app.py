"""Each app has its own outbox handlers: two apps in one process (two stores) never run each other's."""

from __future__ import annotations

import time

from kit.outbox import drain
from kit.stores import make_store

from app import create_app
from auth import audit
from fhir_server.config import load_config
from fhir_server.outbox import outbox_of
from fhir_server.subscriptions import notify
from predmp import export as predmp_export
from rules import triage

KIND = "test-per-app"


def _app(tmp_path, name: str, **settings):
    (tmp_path / name).mkdir()
    store = make_store("sqlite", tmp_path / name)
    settings = {"auth": False, "scheduler": False, "base_url": f"http://{name}.example/fhir", **settings}
    config = load_config(environ={}, **settings)
    return create_app(config, store=store)


def _registered(outbox) -> dict[str, list]:
    return {kind: list(handlers) for kind, handlers in outbox.handlers.items()} | {
        f"dead-letter {kind}": list(handlers) for kind, handlers in outbox.dead_letter_handlers.items()}


def test_a_handler_registered_on_one_app_runs_on_its_store_only(tmp_path):
    a, b = _app(tmp_path, "a"), _app(tmp_path, "b")
    store_a, store_b = a.extensions["relais_store"], b.extensions["relais_store"]
    handled = []
    outbox_of(a).register(KIND, lambda store, payloads: handled.extend((store, p["name"]) for p in payloads))
    store_a.outbox_enqueue([{"kind": KIND, "name": "for a"}])
    store_b.outbox_enqueue([{"kind": KIND, "name": "for b"}])

    assert drain(b) == 1 and drain(a) == 1
    assert handled == [(store_a, "for a")]
    assert KIND not in outbox_of(b).handlers
    # B has no handler of that kind: its dispatcher counts the event done without running anything
    # (what it does with any kind no handler is registered for), and A's handler never sees it.
    assert store_b.outbox_pending() == 0 and store_a.outbox_pending() == 0
    assert list(store_b.kv_list("outbox-dead")) == []


def test_creating_a_second_app_adds_no_handler_to_the_first(tmp_path):
    a = _app(tmp_path, "a")
    before = _registered(outbox_of(a))
    b = _app(tmp_path, "b", resthook_allow=["https://hooks.example/"])
    assert _registered(outbox_of(a)) == before
    assert outbox_of(b) is not outbox_of(a)
    # one handler of each kind, bound to its own app's settings; written resources have two: Subscription
    # matching and triage's (which versions a rule's trigger matches, queued as triage events)
    assert {kind: len(handlers) for kind, handlers in before.items()} == {
        audit.OUTBOX_KIND: 1, notify.RESOURCE_KIND: 2, notify.DELIVERY_KIND: 1, triage.OUTBOX_KIND: 1,
        f"dead-letter {triage.OUTBOX_KIND}": 1,
        predmp_export.OUTBOX_KIND: 1, f"dead-letter {predmp_export.OUTBOX_KIND}": 1,
    }
    settings_a = outbox_of(a).handlers[notify.DELIVERY_KIND][0].args[0]
    settings_b = outbox_of(b).handlers[notify.DELIVERY_KIND][0].args[0]
    assert (settings_a.server_base, settings_a.allowed_endpoints) == ("http://a.example/fhir", ())
    assert (settings_b.server_base, settings_b.allowed_endpoints) == ("http://b.example/fhir", ("https://hooks.example/",))
    assert outbox_of(a).handlers[predmp_export.OUTBOX_KIND][0].args[0].base_url == "http://a.example/fhir"
    assert outbox_of(b).handlers[predmp_export.OUTBOX_KIND][0].args[0].base_url == "http://b.example/fhir"


def test_the_scheduler_drains_its_apps_outbox(tmp_path):
    app = _app(tmp_path, "a", scheduler=True, dispatcher_interval_s=0.05)
    try:
        handled = []
        outbox_of(app).register(KIND, lambda _store, payloads: handled.extend(p["name"] for p in payloads))
        app.extensions["relais_store"].outbox_enqueue([{"kind": KIND, "name": "queued"}])
        deadline = time.monotonic() + 10
        while not handled and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the scheduler's thread, bounded by the deadline
        assert handled == ["queued"]
    finally:
        app.extensions["relais_scheduler"].shutdown(wait=True)
        app.extensions["relais_store"].close()
