"""The store contract: every backend (sqlite, mongomock, and a real MongoDB when configured) passes it."""

from __future__ import annotations

import threading
import time

import pytest

from fhir_server.search.query import IndexRow, Predicate, SearchQuery, SortKey
from fhir_server.store.base import StoredVersion, VersionConflict


def version(rid: str, v: int, deleted: bool = False, rtype: str = "Patient", ts: str | None = None) -> StoredVersion:
    body = None if deleted else {"resourceType": rtype, "id": rid, "meta": {"versionId": str(v)}, "gender": "female"}
    return StoredVersion(rtype, rid, v, ts or f"2026-11-23T10:00:{v:02d}.000Z", "PUT", body, deleted)


def ident(value: str) -> list[IndexRow]:
    return [IndexRow("identifier", "token", "urn:oid:1.2.250.1.213.1.4.8", value)]


def token_query(code: str, rtype: str = "Patient", count: int = 20) -> SearchQuery:
    return SearchQuery(rtype, ((Predicate("identifier", "token", "eq", (None, code)),),), count=count)


def test_put_then_read_current_and_each_version(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), ident("111"))
        txn.outbox_append({"kind": "resource", "id": "a", "version": 1})
    with store.transaction() as txn:
        assert txn.current("Patient", "a").version == 1
        txn.put(version("a", 2), ident("222"))
        txn.outbox_append({"kind": "resource", "id": "a", "version": 2})
    assert store.read("Patient", "a").version == 2
    assert store.read("Patient", "a").resource["meta"]["versionId"] == "2"
    assert store.read("Patient", "a", 1).resource["meta"]["versionId"] == "1"
    assert store.read("Patient", "a", 3) is None
    assert store.read("Patient", "missing") is None
    assert store.read("Observation", "a") is None


def test_a_version_can_be_stored_once_only(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), [])
    with pytest.raises(VersionConflict):
        with store.transaction() as txn:
            txn.put(version("a", 1), [])
    assert store.read("Patient", "a").version == 1


def test_a_failed_transaction_leaves_nothing(store):
    if not getattr(store, "supports_transactions", True):
        pytest.skip("this deployment has no multi-document transactions (standalone mongod, mongomock)")
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.put(version("a", 1), ident("111"))
            txn.outbox_append({"kind": "resource"})
            raise RuntimeError("crash before commit")
    assert store.read("Patient", "a") is None
    assert store.history("Patient", "a").total == 0
    assert store.outbox_pending() == 0
    assert store.search(token_query("111")).ids == []


def test_a_record_put_in_a_transaction_is_stored_with_it_or_not_at_all(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), [])
        txn.kv_put("feed_messages", "s|k1", {"outcome": "accepted"})
        txn.kv_put("feed_messages", "s|k1", {"outcome": "accepted", "written": ["Patient/a/_history/1"]})
    assert store.kv_get("feed_messages", "s|k1") == {"outcome": "accepted", "written": ["Patient/a/_history/1"]}
    with store.transaction() as txn:
        txn.kv_put("feed_messages", "s|k3", {"outcome": "accepted"})
        txn.kv_delete("feed_messages", "s|k1")
        txn.kv_delete("feed_messages", "s|never")
    assert store.kv_get("feed_messages", "s|k1") is None and store.kv_get("feed_messages", "s|k3") is not None
    if not getattr(store, "supports_transactions", True):
        return  # sequential writes: nothing to roll back
    with pytest.raises(RuntimeError):
        with store.transaction() as txn:
            txn.put(version("b", 1), [])
            txn.kv_put("feed_messages", "s|k2", {"outcome": "accepted"})
            raise RuntimeError("crash before commit")
    assert store.kv_get("feed_messages", "s|k2") is None and store.read("Patient", "b") is None


def test_deletion_is_a_version_and_history_keeps_it(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), ident("111"))
    with store.transaction() as txn:
        txn.put(version("a", 2, deleted=True), [])
    current = store.read("Patient", "a")
    assert current.deleted and current.version == 2 and current.resource is None
    page = store.history("Patient", "a")
    assert [e.version for e in page.entries] == [2, 1]
    assert page.entries[0].deleted and page.entries[1].resource["id"] == "a"
    assert store.search(token_query("111")).ids == []
    assert store.read_many("Patient", ["a"]) == []


def test_history_levels_since_and_paging(store):
    for i in range(5):
        with store.transaction() as txn:
            txn.put(version(f"p{i}", 1, ts=f"2026-11-23T10:00:0{i}.000Z"), [])
    with store.transaction() as txn:
        txn.put(version("o1", 1, rtype="Observation", ts="2026-11-23T10:00:09.000Z"), [])
    assert store.history().total == 6
    assert store.history("Patient").total == 5
    assert store.history(since="2026-11-23T10:00:03.000Z").total == 3
    first = store.history("Patient", count=2)
    assert [e.id for e in first.entries] == ["p4", "p3"] and first.next_cursor
    second = store.history("Patient", cursor=first.next_cursor, count=2)
    assert [e.id for e in second.entries] == ["p2", "p1"]
    third = store.history("Patient", cursor=second.next_cursor, count=2)
    assert [e.id for e in third.entries] == ["p0"] and third.next_cursor is None


def test_search_by_token_pages_and_counts(store):
    for i in range(7):
        with store.transaction() as txn:
            txn.put(version(f"p{i}", 1), ident("same" if i % 2 == 0 else f"other{i}"))
    result = store.search(token_query("same", count=2))
    assert len(result.ids) == 2 and result.total == 4
    rest = store.search(SearchQuery("Patient", token_query("same").clauses, count=10, offset=2))
    assert len(rest.ids) == 2 and not set(rest.ids) & set(result.ids)
    none = store.search(SearchQuery("Patient", token_query("same").clauses, total="none"))
    assert none.total is None and len(none.ids) == 4
    either = SearchQuery("Patient", ((Predicate("identifier", "token", "eq", (None, "other1")),
                                      Predicate("identifier", "token", "eq", (None, "other3"))),))
    assert sorted(store.search(either).ids) == ["p1", "p3"]
    with_system = SearchQuery("Patient", ((Predicate("identifier", "token", "eq", ("urn:oid:1.2.250.1.213.1.4.8",
                                                                                     "other5")),),))
    assert store.search(with_system).ids == ["p5"]
    wrong_system = SearchQuery("Patient", ((Predicate("identifier", "token", "eq", ("urn:x", "other5")),),))
    assert store.search(wrong_system).ids == []


@pytest.mark.parametrize(("kind", "ascending"), [("number", ["p-b", "p-c", "p-a"]), ("string", ["p-c", "p-a", "p-b"])])
def test_a_sort_orders_by_the_kind_the_query_carries(store, kind, ascending):
    """The backend orders by the kind each sort key of the IR carries: ``x-score`` is in no registry.
    Numbers by value (9 < 10 < 11), strings by code ("10" < "11" < "9"); never by id (p-a, p-b, p-c)."""
    for rid, value in (("p-a", 11.0), ("p-b", 9.0), ("p-c", 10.0)):
        code = str(int(value))
        row = (IndexRow("x-score", "number", low=value, high=value) if kind == "number"
               else IndexRow("x-score", "string", None, code, code))
        with store.transaction() as txn:
            txn.put(version(rid, 1), [row])
    assert store.search(SearchQuery("Patient", sort=(SortKey("x-score", False, kind),))).ids == ascending
    assert store.search(SearchQuery("Patient", sort=(SortKey("x-score", True, kind),))).ids == ascending[::-1]


def test_reindexing_replaces_old_values(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), ident("old"))
    with store.transaction() as txn:
        txn.put(version("a", 2), ident("new"))
    assert store.search(token_query("old")).ids == []
    assert store.search(token_query("new")).ids == ["a"]
    assert store.read_many("Patient", ["zz", "a"])[0].version == 2


def test_an_update_keeps_the_values_it_shares_and_drops_the_others(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), ident("kept") + ident("dropped"))
    with store.transaction() as txn:
        txn.put(version("a", 2), ident("kept") + ident("added") + ident("added"))
    assert [store.search(token_query(code)).ids for code in ("kept", "dropped", "added")] == [["a"], [], ["a"]]
    with store.transaction() as txn:
        txn.put(version("a", 3, deleted=True), [])
    assert store.search(token_query("kept")).ids == []
    with store.transaction() as txn:
        txn.put(version("a", 4), ident("kept"))
    assert store.search(token_query("kept")).ids == ["a"] and store.search(token_query("added")).ids == []


def test_outbox_claim_lease_done_and_release(store):
    with store.transaction() as txn:
        for i in range(5):
            txn.outbox_append({"kind": "resource", "n": i})
    first = store.outbox_claim("w1", lease_s=60, limit=3)
    assert [e.payload["n"] for e in first] == [0, 1, 2]
    second = store.outbox_claim("w2", lease_s=60, limit=10)
    assert [e.payload["n"] for e in second] == [3, 4]
    assert store.outbox_claim("w3", lease_s=60, limit=10) == []
    store.outbox_done([e.id for e in first])
    assert store.outbox_pending() == 2
    store.outbox_release([second[0].id], delay_s=0)
    again = store.outbox_claim("w3", lease_s=60, limit=10)
    assert [e.payload["n"] for e in again] == [3] and again[0].attempts == 2


def test_the_oldest_unclaimed_event_is_dated_until_a_dispatcher_claims_it(store):
    assert store.outbox_oldest_unclaimed() is None
    before = time.time()
    with store.transaction() as txn:
        txn.outbox_append({"kind": "resource", "n": 0})
        txn.outbox_append({"kind": "resource", "n": 1})
    oldest = store.outbox_oldest_unclaimed()
    assert oldest is not None and before - 1 <= oldest <= time.time() + 1
    claimed = store.outbox_claim("w1", lease_s=60, limit=10)
    # claimed, then given back for a retry: a retry waiting its backoff is not a dispatcher falling behind
    store.outbox_release([e.id for e in claimed], delay_s=30)
    assert store.outbox_oldest_unclaimed() is None and store.outbox_pending() == 2


def test_enqueued_events_are_claimed_done_and_released_beside_written_ones(store):
    with store.transaction() as txn:
        txn.outbox_append({"kind": "resource", "n": 0})
    store.outbox_enqueue([{"kind": "audit", "n": 1}, {"kind": "audit", "n": 2}])
    store.outbox_enqueue([])
    assert store.outbox_pending() == 3
    claimed = store.outbox_claim("w1", lease_s=60, limit=10)
    assert sorted(e.payload["n"] for e in claimed) == [0, 1, 2]
    assert len({e.id for e in claimed}) == 3
    assert store.outbox_claim("w2", lease_s=60, limit=10) == []
    by_n = {e.payload["n"]: e for e in claimed}
    store.outbox_done([by_n[0].id, by_n[1].id])
    store.outbox_release([by_n[2].id], delay_s=0)
    assert store.outbox_pending() == 1
    again = store.outbox_claim("w3", lease_s=60, limit=10)
    assert [(e.payload["n"], e.attempts) for e in again] == [(2, 2)]
    store.outbox_done([again[0].id])
    assert store.outbox_pending() == 0


def test_an_expired_lease_returns_to_the_pool(store):
    with store.transaction() as txn:
        txn.outbox_append({"kind": "x"})
    assert len(store.outbox_claim("dead-worker", lease_s=-1, limit=10)) == 1
    assert len(store.outbox_claim("w2", lease_s=60, limit=10)) == 1


def test_concurrent_claims_never_share_an_event(store):
    if type(getattr(store, "client", None)).__module__.startswith("mongomock"):
        pytest.skip("mongomock is not thread-safe; a real MongoDB makes find_one_and_update atomic")
    with store.transaction() as txn:
        for i in range(200):
            txn.outbox_append({"kind": "x", "n": i})
    seen: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while events := store.outbox_claim(name, lease_s=60, limit=7):
            with lock:
                seen.extend(e.payload["n"] for e in events)
            store.outbox_done([e.id for e in events])

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(seen) == list(range(200))
    assert store.outbox_pending() == 0


def test_keyed_tables(store):
    store.kv_put("oauth_clients", "c1", {"name": "vendor", "scopes": ["system/*.rs"]})
    assert store.kv_get("oauth_clients", "c1")["name"] == "vendor"
    assert store.kv_insert("oauth_jti", "abc", {"exp": 1}) is True
    assert store.kv_insert("oauth_jti", "abc", {"exp": 2}) is False
    assert store.kv_get("oauth_jti", "abc") == {"exp": 1}
    assert store.kv_insert("oauth_jti", "def", {"exp": 3}, durable=False) is True
    assert store.kv_insert("oauth_jti", "def", {"exp": 4}, durable=False) is False
    store.kv_put("oauth_clients", "c0", {"name": "first"})
    assert [k for k, _ in store.kv_list("oauth_clients")] == ["c0", "c1"]
    assert store.kv_delete("oauth_clients", "c1") is True
    assert store.kv_delete("oauth_clients", "c1") is False
    assert store.kv_get("oauth_clients", "c1") is None


def test_stats_count_live_resources_and_versions(store):
    with store.transaction() as txn:
        txn.put(version("a", 1), [])
        txn.put(version("b", 1), [])
    with store.transaction() as txn:
        txn.put(version("b", 2, deleted=True), [])
    stats = store.stats()
    assert stats["resources"] == 1 and stats["versions"] == 3


def test_a_background_checkpoint_keeps_every_write(store):
    if not hasattr(store, "checkpoint"):
        pytest.skip("this backend has no write-ahead log to checkpoint")
    for i in range(50):
        with store.transaction() as txn:
            txn.put(version(f"p{i}", 1), ident(f"c{i}"))
    store.checkpoint()
    with store.transaction() as txn:
        txn.put(version("p0", 2), ident("after"))
    store.checkpoint()
    store.optimize()
    assert store.stats()["versions"] == 51
    assert store.search(token_query("after")).ids == ["p0"]
    assert store.read("Patient", "p49").version == 1


def test_decimals_come_back_as_they_were_written(store):
    from fhir_server.fhirjson import dumps, parse_body

    body = parse_body(
        '{"resourceType": "Observation", "id": "d", "valueQuantity": {"value": 72.400},'
        ' "component": [{"valueQuantity": {"value": 1e2}}, {"valueQuantity": {"value": -0.0}},'
        ' {"valueQuantity": {"value": 1234567890.12345678901234567890}},'
        ' {"valueQuantity": {"value": 1.234567890123456789012345678901234567890}}],'
        ' "note": [{"text": "0.10"}], "x": [0.10, 5, [0.20]], "big": 123456789012345678901234567890}'
    )
    written = dumps(body)
    with store.transaction() as txn:
        txn.put(StoredVersion("Observation", "d", 1, "2026-11-23T10:00:01.000Z", "POST", body), [])
    with store.transaction() as txn:
        assert dumps(txn.current("Observation", "d").resource) == written
    assert dumps(store.read("Observation", "d").resource) == written
    assert b'"valueQuantity":{"value":72.400}' in written and b'"x":[0.10,5,[0.20]]' in written
    assert dumps(store.read("Observation", "d", 1).resource) == written
    assert [dumps(v.resource) for v in store.read_many("Observation", ["d"])] == [written]
    assert [dumps(v.resource) for v in store.history("Observation", "d").entries] == [written]
    assert [dumps(v.resource) for v in store.scan("Observation", None, 10)] == [written]
    assert dumps(body) == written  # storing it changed nothing the caller holds
