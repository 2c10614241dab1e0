"""Conditional creates in the shared ingest (mappers/feed.py), with a feed of its own, on both stores: found,
they write and decide nothing; not found, they are created under the mapper's stable id when the feed asks."""

from __future__ import annotations

import json

from auth import Caller
from fhir_server import write
from mappers import feed
from mappers.json_feed import find_or_create, stable_id

SYSTEM = "urn:test:things"
SOURCE = feed.Source("http", "127.0.0.1", "thing-hub")


def _identity(text: str) -> feed.Identity:
    return feed.Identity("thing-hub", None, lambda problem: feed.Answer({"problem": problem and problem.reason},
                                                                       feed.verdict(problem)))


def _map(text: str) -> feed.Mapped:
    """One Device found or created by its serial, and an Observation naming it."""
    serial = json.loads(text)["serial"]
    identifier = {"system": SYSTEM, "value": serial}
    device = {"resourceType": "Device", "id": stable_id("Device", SYSTEM, serial), "identifier": [identifier]}
    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
                   "device": {"reference": f"Device/{device['id']}"}}
    changes = [find_or_create(device, [identifier], "serial"), write.Change(write.CREATE, "Observation",
                                                                            resource=observation)]

    def answer(problem, results):
        body = {"problem": problem and problem.reason, "results": [(r.resource_type, r.id, r.outcome)
                                                                   for r in results]}
        return feed.Answer(body, feed.verdict(problem))

    return feed.Mapped(changes, ["serial", "serial"], written_answer=answer)


def _feed(stable_ids: bool) -> feed.FeedMapper:
    return feed.FeedMapper(name="things", label="things", table="test_things", identify=_identity, map=_map,
                           stable_ids=stable_ids)


def _send(store, serial: str, actor: Caller | None = None, stable_ids: bool = True) -> feed.Outcome:
    return feed.ingest(store, _feed(stable_ids), json.dumps({"serial": serial}).encode(), actor, SOURCE,
                       "http://127.0.0.1/fhir")


def test_a_create_not_found_keeps_the_mappers_stable_id_only_when_the_feed_asks(store):
    stable = _send(store, "A").answer["results"]
    assert stable[0] == ("Device", stable_id("Device", SYSTEM, "A"), "created")
    fresh = _send(store, "B", stable_ids=False).answer["results"]
    assert fresh[0][2] == "created" and fresh[0][1] != stable_id("Device", SYSTEM, "B")
    (observation,) = [v.resource for v in store.scan("Observation", None, 10) if v.resource["device"]["reference"]
                      == f"Device/{fresh[0][1]}"]
    assert observation  # the reference follows the id the Device got


def test_a_create_found_writes_nothing_needs_no_scope_and_is_not_audited_as_a_create(store):
    _send(store, "A")
    store.outbox_done([e.id for e in store.outbox_claim("test", 30.0, 1000)])
    observer = Caller(client_id="thing-hub", scopes=("system/Observation.c",))
    outcome = _send(store, "A", observer)
    audited = [e.payload for e in store.outbox_claim("test", 30.0, 1000) if e.payload.get("kind") == "audit"]
    named = json.dumps(audited)
    assert "Observation" in named and '"Device"' not in named
    assert outcome.answer["problem"] is None
    device, observation = outcome.answer["results"]
    assert device == ("Device", stable_id("Device", SYSTEM, "A"), "exists")
    assert observation[2] == "created"
    assert outcome.record["written"] == [f"Observation/{observation[1]}/_history/1"]
    assert len(store.scan("Device", None, 10)) == 1
    refused = _send(store, "new", observer)  # a Device to create: the scope is needed
    assert refused.answer["problem"] == feed.FORBIDDEN


def test_a_deleted_resource_holding_the_stable_id_gets_a_new_id(store):
    first = _send(store, "A").answer["results"][0][1]
    write.write(store, [write.Change(write.DELETE, "Device", id=first)], None)
    again = _send(store, "A").answer
    assert again["problem"] is None
    assert again["results"][0][1] != first and again["results"][0][2] == "created"
