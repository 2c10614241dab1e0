"""Query plans of the SQLite store's reads by id: the primary key, whatever the statistics say.

A new database has no ANALYZE statistics; the planner then prefers resources_live (rtype, deleted)
over the primary key, and a read of a few ids scans every live resource of the type.
"""

from __future__ import annotations

import pytest

from fhir_server.store import open_store
from fhir_server.store.base import StoredVersion


@pytest.fixture
def sqlite_store(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'plans.db'}")
    with store.transaction() as txn:
        for i in range(50):
            body = {"resourceType": "AuditEvent", "id": f"a{i}"}
            txn.put(StoredVersion("AuditEvent", f"a{i}", 1, "2026-11-24T00:00:00.000Z", "POST", body), [])
    yield store
    store.close()


def plans_of(store, call) -> list[str]:
    """The query plan of every SELECT on resources that ``call`` runs."""
    statements: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(statements.append)
    try:
        call()
    finally:
        conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT") and "FROM resources" in s]
    assert selects, "the call ran no SELECT on resources"
    return [" ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + s)) for s in selects]


@pytest.mark.parametrize("call", [
    lambda store: store.read_many("AuditEvent", ["a1", "a7", "missing"]),
    lambda store: store.read("AuditEvent", "a3"),
])
def test_reads_by_id_use_the_primary_key(sqlite_store, call):
    for plan in plans_of(sqlite_store, lambda: call(sqlite_store)):
        assert "resources_live" not in plan
        assert "rid=?" in plan, plan
