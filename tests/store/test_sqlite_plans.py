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


@pytest.mark.parametrize(("criteria", "index"), [
    ("Observation?date=ge2026-01-01", "si_ranged"),
    ("Observation?value-quantity=gt5", "si_ranged"),
    ("RiskAssessment?probability=gt0.5", "si_ranged"),
    ("Observation?value-quantity=gt5|http://unitsofmeasure.org|kg", "si_code"),
    ("Observation?code-value-quantity=http://loinc.org|8480-6$gt180", "si_code"),
])
def test_range_searches_are_driven_by_an_index(sqlite_store, criteria, index):
    """A range without a code is driven by si_ranged (its partial condition repeated), one with a code by si_code."""
    from fhir_server.search.parser import parse_criteria

    query = parse_criteria(criteria)
    (plan,) = plans_of(sqlite_store, lambda: sqlite_store.search(query))
    assert f"INDEX {index} (rtype=? AND param=?" in plan, plan


def test_an_older_database_trades_si_bounds_for_si_ranged_at_start(tmp_path):
    import sqlite3

    path = tmp_path / "old.db"
    open_store(f"sqlite:///{path}").close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX si_ranged")
    conn.execute("CREATE INDEX si_bounds ON search_index (rtype, param, low, high, kind, rid) WHERE low IS NOT NULL")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        names = {row[0] for row in store._conn().execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "si_ranged" in names and "si_bounds" not in names
    finally:
        store.close()
