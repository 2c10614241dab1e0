"""Several processes opening one new SQLite file at once, as gunicorn's workers do at first start."""

from __future__ import annotations

import multiprocessing

from fhir_server.store import open_store


def _open_and_write(path: str) -> str:
    store = open_store(f"sqlite:///{path}")
    try:
        store.outbox_enqueue([{"kind": "probe"}])
        return store._conn().execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        store.close()


def test_processes_opening_a_new_file_together_all_get_it_in_wal_mode(tmp_path):
    # Before the switch to WAL was taken under the writer lock, 2 rounds in 40 failed with
    # "database is locked"; 12 rounds make a regression likely to show.
    for round in range(12):
        path = str(tmp_path / f"new-{round}.db")
        with multiprocessing.get_context("fork").Pool(4) as pool:
            assert pool.map(_open_and_write, [path] * 4) == ["wal"] * 4
        store = open_store(f"sqlite:///{path}")
        assert store.outbox_pending() == 4
        store.close()
