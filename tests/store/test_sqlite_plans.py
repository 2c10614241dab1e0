"""Query plans of the SQLite store, and the start of a database written under an earlier schema.

A new database has no ANALYZE statistics; the planner then prefers resources_recent (rtype, deleted)
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
        assert "resources_recent" not in plan
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


# The schema before resource keys, as databases of 2026-11 have it: index rows name (rtype, rid),
# si_bounds instead of si_ranged, an _id row for every resource.
_SCHEMA_BY_RID = [
    """CREATE TABLE resources (rtype TEXT NOT NULL, rid TEXT NOT NULL, version INTEGER NOT NULL,
        last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, body TEXT, PRIMARY KEY (rtype, rid))""",
    """CREATE TABLE search_index (rtype TEXT NOT NULL, rid TEXT NOT NULL, param TEXT NOT NULL, kind TEXT NOT NULL,
        system TEXT, code TEXT, text TEXT, low REAL, high REAL)""",
    "CREATE INDEX si_code ON search_index (rtype, param, code, system, kind, rid, high, low)",
    "CREATE INDEX si_bounds ON search_index (rtype, param, low, high, kind, rid) WHERE low IS NOT NULL",
    "CREATE INDEX si_probe ON search_index (rtype, rid, param, kind, low, high, code, system)",
    "CREATE INDEX resources_live ON resources (rtype, deleted, last_updated)",
]


def test_a_database_written_before_resource_keys_is_keyed_at_start(tmp_path):
    """Resources keep their order, index rows get their resource's key, _lastUpdated moves into
    ``resources``, and searches answer as before."""
    import json
    import sqlite3

    from fhir_server.search.extract import index_values
    from fhir_server.search.parser import parse_criteria

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in _SCHEMA_BY_RID:
        conn.execute(statement)
    patient = {"resourceType": "Patient", "id": "p1", "identifier": [{"system": "urn:x", "value": "42"}]}
    observations = [
        {"resourceType": "Observation", "id": f"o{i}", "status": "final", "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
         "effectiveDateTime": f"2026-0{i}-01", "valueQuantity": {"value": 70 + i, "code": "kg",
                                                                 "system": "http://unitsofmeasure.org"}}
        for i in (3, 1, 2)
    ]
    for resource in [patient, *observations]:
        resource["meta"] = {"versionId": "1", "lastUpdated": "2026-11-01T00:00:00.000Z"}
        key = (resource["resourceType"], resource["id"])
        conn.execute("INSERT INTO resources VALUES (?,?,1,'2026-11-01T00:00:00.000Z',0,?)",
                     (*key, json.dumps(resource)))
        conn.executemany("INSERT INTO search_index VALUES (?,?,?,?,?,?,?,?,?)",
                         [(*key, *row) for row in index_values(resource)])
    conn.commit()
    conn.close()

    store = open_store(f"sqlite:///{path}")
    try:
        db = store._conn()
        assert [row[0] for row in db.execute("SELECT rid FROM resources ORDER BY key")] == ["p1", "o3", "o1", "o2"]
        columns = {row[1] for row in db.execute("PRAGMA table_info(search_index)")}
        assert "key" in columns and "rid" not in columns
        assert db.execute("SELECT count(*) FROM search_index WHERE param = '_id'").fetchone()[0] == 0
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"si_code", "si_ranged", "si_probe", "resources_recent"} <= names
        assert not {"si_bounds", "resources_live"} & names
        assert db.execute("SELECT count(*) FROM search_index WHERE param = '_lastUpdated'").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM resources WHERE updated_low IS NULL").fetchone()[0] == 0
        for criteria, ids in [
            ("Observation?code=http://loinc.org|29463-7&_sort=date", ["o1", "o2", "o3"]),
            ("Observation?date=ge2026-02-01&value-quantity=lt73", ["o2"]),
            ("Observation?subject:Patient.identifier=urn:x|42&_sort=-date", ["o3", "o2", "o1"]),
            ("Patient?_has:Observation:subject:date=2026-03-01", ["p1"]),
            ("Observation?_id=o1,o3", ["o3", "o1"]),
            ("Observation?_lastUpdated=2026-11-01&_lastUpdated=lt2026-11-01T00:00:01Z", ["o3", "o1", "o2"]),
        ]:
            assert store.search(parse_criteria(criteria)).ids == ids, criteria
        with store.transaction() as txn:
            update = {**observations[0], "status": "amended",
                      "meta": {"versionId": "2", "lastUpdated": "2026-11-02T00:00:00.000Z"}}
            txn.put(StoredVersion("Observation", "o3", 2, "2026-11-02T00:00:00.000Z", "PUT", update),
                    index_values(update))
        assert store.search(parse_criteria("Observation?status=amended")).ids == ["o3"]
        assert store.search(parse_criteria("Observation?_lastUpdated=2026-11-02")).ids == ["o3"]
        assert db.execute("SELECT key FROM resources WHERE rid = 'o3'").fetchone()[0] == 2  # the update kept it
    finally:
        store.close()


def test_a_keyed_database_without_updated_columns_gets_them_at_start(tmp_path):
    """The step between: index rows keyed, _lastUpdated still a row. The rows move into ``resources``."""
    import json
    import sqlite3

    from fhir_server.search.extract import index_values
    from fhir_server.search.parser import parse_criteria

    path = tmp_path / "keyed.db"
    conn = sqlite3.connect(path)
    conn.execute("""CREATE TABLE resources (key INTEGER PRIMARY KEY, rtype TEXT NOT NULL, rid TEXT NOT NULL,
        version INTEGER NOT NULL, last_updated TEXT NOT NULL, deleted INTEGER NOT NULL, body TEXT,
        UNIQUE (rtype, rid))""")
    conn.execute("""CREATE TABLE search_index (rtype TEXT NOT NULL, key INTEGER NOT NULL, param TEXT NOT NULL,
        kind TEXT NOT NULL, system TEXT, code TEXT, text TEXT, low REAL, high REAL)""")
    conn.execute("CREATE INDEX resources_live ON resources (rtype, deleted, last_updated)")
    for day in (1, 2):
        stamp = f"2026-11-0{day}T00:00:00.000Z"
        resource = {"resourceType": "Patient", "id": f"p{day}", "meta": {"versionId": "1", "lastUpdated": stamp}}
        key = conn.execute("INSERT INTO resources (rtype, rid, version, last_updated, deleted, body)"
                           " VALUES ('Patient', ?, 1, ?, 0, ?)",
                           (resource["id"], stamp, json.dumps(resource))).lastrowid
        conn.executemany("INSERT INTO search_index VALUES ('Patient',?,?,?,?,?,?,?,?)",
                         [(key, *row) for row in index_values(resource) if row.param != "_id"])
    conn.commit()
    conn.close()

    store = open_store(f"sqlite:///{path}")
    try:
        db = store._conn()
        assert db.execute("SELECT count(*) FROM search_index WHERE param = '_lastUpdated'").fetchone()[0] == 0
        assert store.search(parse_criteria("Patient?_lastUpdated=ge2026-11-02")).ids == ["p2"]
        assert store.search(parse_criteria("Patient?_sort=-_lastUpdated")).ids == ["p2", "p1"]
    finally:
        store.close()
