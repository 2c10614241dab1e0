"""The SQLite store's audit spool (fhir_server/store/journal.py): appended files, claimed for a lease.

Each store object plays a process: two on one file claim as two gunicorn workers would.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3

import pytest

from fhir_server.store import journal, open_store


def _segments(path) -> list[str]:
    return sorted(n for n in os.listdir(f"{path}-spool.d") if n.endswith(".jsonl"))


def _enqueue_and_die(url: str) -> None:
    store = open_store(url)
    store.outbox_enqueue([{"kind": "audit", "n": n} for n in range(3)])
    os._exit(0)  # no close, no atexit: as if killed right after answering


def test_events_of_a_process_that_died_after_appending_are_claimed_and_its_file_removed(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    child = multiprocessing.get_context("fork").Process(target=_enqueue_and_die, args=(url,))
    child.start()
    child.join()
    assert child.exitcode == 0
    store = open_store(url)
    try:
        assert store.outbox_pending() == 3
        events = store.outbox_claim("w", lease_s=60, limit=10)
        assert sorted(e.payload["n"] for e in events) == [0, 1, 2]
        store.outbox_done([e.id for e in events])
        assert store.outbox_pending() == 0
        assert store.outbox_claim("w", lease_s=60, limit=10) == []  # this claim finds it done and unheld
        assert _segments(tmp_path / "r.db") == []
    finally:
        store.close()


def test_two_processes_never_share_a_live_claim_and_an_expired_lease_passes_on(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    first, second = open_store(url), open_store(url)
    try:
        first.outbox_enqueue([{"kind": "audit", "n": n} for n in range(4)])
        claimed = first.outbox_claim("w1", lease_s=60, limit=3)
        assert [e.payload["n"] for e in claimed] == [0, 1, 2]
        assert second.outbox_claim("w2", lease_s=60, limit=10) == []  # the rest waits behind the lease
        first.outbox_done([e.id for e in claimed])
        expired = second.outbox_claim("w2", lease_s=-1, limit=10)
        assert [e.payload["n"] for e in expired] == [3]
        again = first.outbox_claim("w1", lease_s=60, limit=10)
        assert [e.payload["n"] for e in again] == [3]
        # Both handled event 3 (handlers are idempotent); the first done counts, the other changes nothing.
        second.outbox_done([expired[0].id])
        assert first.outbox_pending() == 0
        first.outbox_done([again[0].id])
        first.outbox_enqueue([{"kind": "audit", "n": 4}])
        assert [e.payload["n"] for e in second.outbox_claim("w2", lease_s=60, limit=10)] == [4]
    finally:
        first.close()
        second.close()


def test_a_released_event_waits_out_its_delay_in_the_outbox_table(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        store.outbox_enqueue([{"kind": "audit", "n": 1}, {"kind": "audit", "n": 2}])
        one, two = store.outbox_claim("w", lease_s=60, limit=10)
        store.outbox_release([one.id], delay_s=3600)
        store.outbox_release([two.id], delay_s=0)
        assert store.outbox_pending() == 2
        (retry,) = store.outbox_claim("w", lease_s=60, limit=10)
        assert (retry.payload["n"], retry.attempts) == (2, 2)
        assert not retry.id.startswith(journal.PREFIX)
    finally:
        store.close()


def test_an_unfinished_event_left_by_a_dead_process_is_skipped(tmp_path, caplog):
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        segment = tmp_path / "r.db-spool.d" / "00000000000000000001-1.jsonl"
        segment.write_bytes(json.dumps({"kind": "audit", "n": 1}).encode() + b'\n{"kind": "au')
        (event,) = store.outbox_claim("w", lease_s=60, limit=10)
        store.outbox_done([event.id])
        assert store.outbox_claim("w", lease_s=60, limit=10) == []
        assert not segment.exists()
        assert "unfinished event" in caplog.text
    finally:
        store.close()


def test_full_segments_rotate_and_drained_ones_go(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "_ROTATE_BYTES", 200)
    monkeypatch.setattr(journal, "_READ_BYTES", 64)  # an event longer than one read is still read whole
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        for n in range(6):
            store.outbox_enqueue([{"kind": "audit", "n": n, "pad": "x" * 100}])
        assert len(_segments(tmp_path / "r.db")) == 3
        seen = []
        while events := store.outbox_claim("w", lease_s=60, limit=4):
            seen += [e.payload["n"] for e in events]
            store.outbox_done([e.id for e in events])
        assert sorted(seen) == list(range(6))
        store.outbox_claim("w", lease_s=60, limit=4)
        assert _segments(tmp_path / "r.db") == []  # rotated away, then drained: nothing left to write there
    finally:
        store.close()


def test_events_waiting_in_an_older_spool_database_move_to_the_journal(tmp_path):
    path = tmp_path / "r.db"
    old = sqlite3.connect(f"{path}-spool")
    old.execute("CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, payload TEXT NOT NULL,"
                " created REAL NOT NULL, lease_owner TEXT, lease_until REAL NOT NULL DEFAULT 0,"
                " attempts INTEGER NOT NULL DEFAULT 0)")
    old.executemany("INSERT INTO outbox (payload, created) VALUES (?, 0)",
                    [(json.dumps({"kind": "audit", "n": n}),) for n in range(2)])
    old.commit()
    old.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert not os.path.exists(f"{path}-spool")
        events = store.outbox_claim("w", lease_s=60, limit=10)
        assert [e.payload["n"] for e in events] == [0, 1]
    finally:
        store.close()


@pytest.mark.parametrize("payloads", [[], [{"kind": "audit", "text": "line\nbreak é"}]])
def test_what_is_appended_is_what_is_claimed(tmp_path, payloads):
    store = open_store(f"sqlite:///{tmp_path / 'r.db'}")
    try:
        store.outbox_enqueue(payloads)
        assert [e.payload for e in store.outbox_claim("w", lease_s=60, limit=10)] == payloads
    finally:
        store.close()
