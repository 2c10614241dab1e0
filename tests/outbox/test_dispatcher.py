"""The dispatcher: a bad event cannot hold back its batch, and one that keeps failing is kept for an operator."""

from __future__ import annotations

import json
import uuid

import pytest

from fhir_server import cli
from fhir_server.outbox import DEAD_LETTERS, MAX_ATTEMPTS, Outbox, dispatcher, payloads_of
from fhir_server.store import open_store


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


def _kind_with_poison(outbox: Outbox) -> tuple[str, list[str]]:
    """A fresh event kind whose handler fails a whole batch when one payload says poison."""
    kind, handled = f"test-{uuid.uuid4().hex[:8]}", []

    def handler(_store, payloads: list[dict]) -> None:
        if any(p.get("poison") for p in payloads):
            raise ValueError("cannot handle this one")
        handled.extend(p["name"] for p in payloads)

    outbox.register(kind, handler)
    return kind, handled


def _append(store, *payloads: dict) -> None:
    with store.transaction() as txn:
        for payload in payloads:
            txn.outbox_append(payload)


def _drain_until_dead(outbox: Outbox, store) -> None:
    """Dispatch until the failing event leaves the outbox (retries are due at once: RETRY_CAP_S is 0)."""
    for _ in range(MAX_ATTEMPTS + 2):
        if store.outbox_pending() == 0:
            return
        outbox.dispatch_once(store)
    raise AssertionError("the failing event never left the outbox")


@pytest.fixture(autouse=True)
def retries_due_at_once(monkeypatch):
    monkeypatch.setattr(dispatcher, "RETRY_CAP_S", 0.0)


def test_a_failing_event_does_not_hold_back_the_others_then_goes_to_the_dead_letters(outbox, store):
    kind, handled = _kind_with_poison(outbox)
    _append(store, {"kind": kind, "name": "a"}, {"kind": kind, "name": "bad", "poison": True},
            {"kind": kind, "name": "b"})
    assert outbox.dispatch_once(store) == 2
    assert handled == ["a", "b"] and store.outbox_pending() == 1
    assert list(store.kv_list(DEAD_LETTERS)) == []
    _drain_until_dead(outbox, store)
    dead = list(store.kv_list(DEAD_LETTERS))
    assert len(dead) == 1 and handled == ["a", "b"]
    _, doc = dead[0]
    assert doc["payload"]["name"] == "bad" and "cannot handle this one" in doc["error"]
    assert doc["attempts"] >= MAX_ATTEMPTS


def test_relais_outbox_lists_failed_events_and_puts_them_back(outbox, tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    store = open_store(url)
    kind, _ = _kind_with_poison(outbox)
    _append(store, {"kind": kind, "name": "bad", "poison": True})
    _drain_until_dead(outbox, store)
    store.close()
    monkeypatch.setenv("RELAIS_STORE", url)

    def run(*argv: str) -> str:
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(argv))
        assert exit_.value.code == 0
        return capsys.readouterr().out

    listed = run("outbox").splitlines()
    assert listed[0] == "pending: 0; failed: 1"
    assert json.loads(listed[1])["payload"]["name"] == "bad"
    assert "1 event(s) back in the outbox" in run("outbox", "--retry", "all")
    assert run("outbox").splitlines() == ["pending: 1; failed: 0"]
    with pytest.raises(SystemExit) as unknown:
        cli.main(["outbox", "--retry", "nope"])
    assert unknown.value.code == 1
    assert dispatcher.dead_letters.DEAD_LETTERS == DEAD_LETTERS


def test_an_event_with_items_hands_each_item_to_the_handler_and_is_retried_whole(outbox, store):
    kind, handled = _kind_with_poison(outbox)
    _append(store, {"kind": kind, "items": [{"name": "a"}, {"name": "b"}]},
            {"kind": kind, "items": [{"name": "c"}, {"name": "bad", "poison": True}]})
    assert outbox.dispatch_once(store) == 1  # the batch failed, then each event alone: the first one is done
    assert handled == ["a", "b"] and store.outbox_pending() == 1
    _drain_until_dead(outbox, store)
    assert handled == ["a", "b"]  # c went with its event's poison, every time
    (_, doc), = store.kv_list(DEAD_LETTERS)
    assert [item["name"] for item in doc["payload"]["items"]] == ["c", "bad"]


def test_one_write_is_one_outbox_event_naming_each_version(store):
    from fhir_server import write
    from fhir_server.actor import SERVER

    observation = {"resourceType": "Observation", "status": "final", "code": {"text": "weight"}}
    results = write.write(store, [write.Change(write.CREATE, "Observation", resource=observation) for _ in range(3)],
                          SERVER)
    (event,) = store.outbox_claim("w1", lease_s=60, limit=10)
    assert event.payload["kind"] == "resource"
    assert [(i["type"], i["id"], i["version"], i["method"]) for i in event.payload["items"]] == [
        ("Observation", r.id, 1, "POST") for r in results
    ]
    assert [p["id"] for p in payloads_of(event.payload)] == [r.id for r in results]
    assert all(p["kind"] == "resource" for p in payloads_of(event.payload))
