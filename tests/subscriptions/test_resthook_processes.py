"""Two server processes on one SQLite file: a Subscription written through one is honoured by the
dispatcher of the other, and so is turning it off (its index follows the Subscription history)."""

from __future__ import annotations

import os

import requests
from kit.live import serve
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server
from kit.samples import observation

from fhir_server.store import open_store
from tests.access.authkit import patients
from tests.subscriptions.hookkit import Receiver, poll, settled, subscription

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def test_a_subscription_from_another_process_is_delivered_then_turned_off(tmp_path):
    url = f"sqlite:///{tmp_path / 'relais.db'}?synchronous=normal"
    store = open_store(url)
    patients(store, "p1")  # the Observations' subject
    live = serve(store, scheduler=True, dispatcher_interval_s=0.05)  # this process dispatches
    port = free_port()
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_AUTH": "off", "RELAIS_SCHEDULER": "off"}
    proc = spawn_relais(env, port)
    receiver = Receiver()
    other = f"http://127.0.0.1:{port}/fhir"
    try:
        # this process has matched a write already: its (empty) index is built
        assert live.post("Observation", observation()).status_code == 201
        poll(lambda: live.store.outbox_pending() == 0, 20, "empty outbox")
        created = requests.post(f"{other}/Subscription", headers=HEADERS,
                                json=subscription(receiver.url, "Observation?code=http://loinc.org|29463-7"))
        assert created.status_code == 201 and created.json()["status"] == "active"
        sent = requests.post(f"{other}/Observation", headers=HEADERS, json=observation()).json()
        got = receiver.wait_for(1)
        assert [r.path for r in got] == [f"/hook/Observation/{sent['id']}"]
        # authentication off: no owner recorded, deliveries unfiltered
        assert not any(e["url"] == "urn:relais:subscription-owner" for e in created.json().get("extension", []))
        turned_off = {**created.json(), "status": "off"}
        assert requests.put(f"{other}/Subscription/{turned_off['id']}", headers=HEADERS,
                            json=turned_off).status_code == 200
        live.post("Observation", observation())
        settled(live.store)
        assert len(receiver.snapshot()) == 1
    finally:
        receiver.close()
        stop_server(proc)
        live.app.extensions["relais_scheduler"].shutdown(wait=True)
        live.close()
        live.store.close()
