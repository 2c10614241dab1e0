"""The scale-out backend: MongoDB through pymongo (replica set or sharded cluster).

Collections, and the shard key each would take on a sharded cluster (see README):
- ``resources``: current versions, ``_id`` = "Type/id", with their index rows in ``idx``;
- ``history``: every version, ``_id`` = "Type/id/version" (unique: two writers can never
  both store version n of a resource);
- ``outbox``: events waiting for the dispatcher, leased atomically with find_one_and_update;
- ``kv``: small keyed tables (OAuth clients, raw HL7 v2 messages, export jobs).

On a replica set every ``transaction()`` is a multi-document transaction. A standalone
mongod (and mongomock) has none: writes then go in an order that keeps versions unique
(history first), and ``supports_transactions`` is False so callers can refuse what needs it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymongo
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.write_concern import WriteConcern

from ..search.query import IndexRow, SearchQuery
from . import mongodb_decimals, mongodb_search
from .base import HistoryPage, OutboxEvent, SearchResult, StoredVersion, VersionConflict


def _version(doc: dict) -> StoredVersion:
    return StoredVersion(
        doc["rtype"],
        doc["rid"],
        doc["version"],
        doc["last_updated"],
        doc.get("method", ""),
        mongodb_decimals.decoded(doc.get("resource"), doc.get("decimals")),
        doc["deleted"],
    )


def _index_doc(row: IndexRow) -> dict:
    return {"p": row.param, "k": row.kind, "s": row.system, "c": row.code, "t": row.text, "lo": row.low, "hi": row.high}


class MongoTransaction:
    def __init__(self, store: MongoStore, session: Any):
        self.store = store
        self.session = session

    def current(self, resource_type: str, id: str) -> StoredVersion | None:
        doc = self.store.resources.find_one({"_id": f"{resource_type}/{id}"}, {"idx": 0}, session=self.session)
        return _version(doc) if doc else None

    def put(self, version: StoredVersion, index: list[IndexRow]) -> None:
        key = f"{version.resource_type}/{version.id}"
        resource, decimals = mongodb_decimals.encoded(version.resource)
        base = {
            "rtype": version.resource_type,
            "rid": version.id,
            "version": version.version,
            "last_updated": version.last_updated,
            "deleted": version.deleted,
            "resource": resource,
        }
        if decimals:  # their texts as written (mongodb_decimals)
            base["decimals"] = decimals
        try:
            # History first: its unique _id is what makes version n belong to one writer only.
            self.store.versions.insert_one(
                {"_id": f"{key}/{version.version}", "method": version.method, **base}, session=self.session
            )
            current = {**base, "idx": [] if version.deleted else [_index_doc(r) for r in index]}
            self.store.resources.replace_one(
                {"_id": key, "version": {"$lt": version.version}}, current, upsert=True, session=self.session
            )
        except DuplicateKeyError:
            raise VersionConflict(f"{key} version {version.version} exists") from None
        except PyMongoError as exc:
            if exc.has_error_label("TransientTransactionError"):
                raise VersionConflict(str(exc)) from None
            raise

    def search(self, query: SearchQuery) -> SearchResult:
        return self.store._search(query, self.session)

    def reindex(self, resource_type: str, id: str, index: list[IndexRow]) -> None:
        self.store.resources.update_one(
            {"_id": f"{resource_type}/{id}"}, {"$set": {"idx": [_index_doc(r) for r in index]}}, session=self.session
        )

    def outbox_append(self, payload: dict) -> None:
        self.store.outbox.insert_one(_outbox_doc(payload), session=self.session)

    def kv_put(self, table: str, key: str, doc: dict) -> None:
        self.store.kv.replace_one({"_id": f"{table}/{key}"}, {"tbl": table, "key": key, "doc": doc}, upsert=True,
                                  session=self.session)

    def kv_delete(self, table: str, key: str) -> None:
        self.store.kv.delete_one({"_id": f"{table}/{key}"}, session=self.session)


def _outbox_doc(payload: dict) -> dict:
    return {"payload": payload, "created": time.time(), "lease_until": 0.0, "attempts": 0}


class MongoStore:
    """``url`` is a MongoDB URI whose path names the database (default ``relais``)."""

    def __init__(self, url: str, client: Any = None, database: str | None = None):
        self.client = client if client is not None else pymongo.MongoClient(url, tz_aware=False)
        db_name = database or pymongo.uri_parser.parse_uri(url).get("database") or "relais"
        self.db = self.client[db_name]
        self.resources = self.db["resources"]
        self.versions = self.db["history"]
        self.outbox = self.db["outbox"]
        self.kv = self.db["kv"]
        self.supports_transactions = self._detect_transactions()
        self.resources.create_index([("rtype", 1), ("deleted", 1)], name="by_type")
        for keys, options in mongodb_search.INDEXES:
            self.resources.create_index(keys, **options)
        self.versions.create_index([("rtype", 1), ("rid", 1), ("last_updated", -1)], name="by_resource")
        self.versions.create_index([("last_updated", -1), ("_id", -1)], name="by_time")
        self.outbox.create_index([("lease_until", 1), ("_id", 1)], name="claimable")
        self.kv.create_index([("tbl", 1), ("key", 1)], name="by_table")

    def _detect_transactions(self) -> bool:
        try:
            hello = self.client.admin.command("hello")
        except (PyMongoError, NotImplementedError, AttributeError):
            return False
        return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[MongoTransaction]:
        if not self.supports_transactions:
            yield MongoTransaction(self, None)
            return
        # Durable: acknowledged by a majority, journaled. Otherwise by the primary's memory.
        concern = WriteConcern("majority", j=True) if durable else WriteConcern(1, j=False)
        with self.client.start_session() as session:
            try:
                with session.start_transaction(write_concern=concern):
                    yield MongoTransaction(self, session)
            except OperationFailure as exc:
                if exc.has_error_label("TransientTransactionError"):
                    raise VersionConflict(str(exc)) from None
                raise

    def read(self, resource_type: str, id: str, version: int | None = None) -> StoredVersion | None:
        key = f"{resource_type}/{id}"
        if version is None:
            doc = self.resources.find_one({"_id": key}, {"idx": 0})
        else:
            doc = self.versions.find_one({"_id": f"{key}/{version}"})
        return _version(doc) if doc else None

    def read_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        if not ids:
            return []
        keys = [f"{resource_type}/{i}" for i in ids]
        found = {
            doc["rid"]: _version(doc)
            for doc in self.resources.find({"_id": {"$in": keys}, "deleted": False}, {"idx": 0})
        }
        return [found[i] for i in ids if i in found]

    def scan(self, resource_type: str, after: str | None, limit: int) -> list[StoredVersion]:
        match: dict[str, Any] = {"rtype": resource_type, "deleted": False}
        if after is not None:
            match["rid"] = {"$gt": after}
        return [_version(d) for d in self.resources.find(match, {"idx": 0}).sort([("rid", 1)]).limit(limit)]

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        since: str | None = None,
        cursor: str | None = None,
        count: int = 20,
    ) -> HistoryPage:
        match: dict[str, Any] = {}
        if resource_type is not None:
            match["rtype"] = resource_type
        if id is not None:
            match["rid"] = id
        if since is not None:
            match["last_updated"] = {"$gte": since}
        total = self.versions.count_documents(match)
        page = dict(match)
        if cursor is not None:
            last_updated, _, last_id = cursor.partition("|")
            page = {
                "$and": [
                    match,
                    {"$or": [{"last_updated": {"$lt": last_updated}},
                             {"last_updated": last_updated, "_id": {"$lt": last_id}}]},
                ]
            }
        docs = list(self.versions.find(page).sort([("last_updated", -1), ("_id", -1)]).limit(count + 1))
        entries = [_version(doc) for doc in docs[:count]]
        next_cursor = None
        if len(docs) > count:
            last = docs[count - 1]
            next_cursor = f"{last['last_updated']}|{last['_id']}"
        return HistoryPage(entries, total, next_cursor)

    def _search(self, query: SearchQuery, session: Any = None) -> SearchResult:
        return mongodb_search.search(self.resources, query, session)

    def search(self, query: SearchQuery) -> SearchResult:
        return self._search(query)

    def explain(self, query: SearchQuery) -> dict:
        return self.resources.find(mongodb_search.compile_filter(query)).explain()

    def outbox_enqueue(self, payloads: list[dict]) -> None:
        if payloads:
            self.outbox.insert_many([_outbox_doc(payload) for payload in payloads])

    def outbox_claim(self, worker: str, lease_s: float, limit: int) -> list[OutboxEvent]:
        now = time.time()
        events = []
        after: dict[str, Any] = {}
        for _ in range(limit):
            doc = self.outbox.find_one_and_update(
                {"lease_until": {"$lte": now}, **after},
                {"$set": {"lease_owner": worker, "lease_until": now + lease_s}, "$inc": {"attempts": 1}},
                sort=[("_id", 1)],
                return_document=pymongo.ReturnDocument.AFTER,
            )
            if doc is None:
                break
            after = {"_id": {"$gt": doc["_id"]}}  # one claim never takes the same event twice
            events.append(OutboxEvent(str(doc["_id"]), doc["payload"], doc["attempts"]))
        return events

    def _outbox_ids(self, event_ids: list[str]) -> list[Any]:
        from bson import ObjectId

        return [ObjectId(i) for i in event_ids]

    def outbox_done(self, event_ids: list[str]) -> None:
        if event_ids:
            self.outbox.delete_many({"_id": {"$in": self._outbox_ids(event_ids)}})

    def outbox_release(self, event_ids: list[str], delay_s: float) -> None:
        if event_ids:
            self.outbox.update_many(
                {"_id": {"$in": self._outbox_ids(event_ids)}},
                {"$set": {"lease_owner": None, "lease_until": time.time() + delay_s}},
            )

    def outbox_pending(self) -> int:
        return self.outbox.count_documents({})

    def outbox_oldest_unclaimed(self) -> float | None:
        doc = self.outbox.find_one({"lease_until": 0.0, "attempts": 0}, sort=[("_id", 1)], projection={"created": 1})
        return None if doc is None else float(doc["created"])

    def kv_put(self, table: str, key: str, doc: dict, durable: bool = True) -> None:
        self._kv(durable).replace_one({"_id": f"{table}/{key}"}, {"tbl": table, "key": key, "doc": doc}, upsert=True)

    def kv_insert(self, table: str, key: str, doc: dict, durable: bool = True) -> bool:
        try:
            self._kv(durable).insert_one({"_id": f"{table}/{key}", "tbl": table, "key": key, "doc": doc})
        except DuplicateKeyError:
            return False
        return True

    def _kv(self, durable: bool) -> Any:
        # Not durable: acknowledged by the primary, not yet journaled (replay-detection records).
        return self.kv if durable else self.kv.with_options(write_concern=WriteConcern(1, j=False))

    def kv_get(self, table: str, key: str) -> dict | None:
        found = self.kv.find_one({"_id": f"{table}/{key}"})
        return found["doc"] if found else None

    def kv_list(self, table: str) -> Iterator[tuple[str, dict]]:
        return iter([(d["key"], d["doc"]) for d in self.kv.find({"tbl": table}).sort([("key", 1)])])

    def kv_delete(self, table: str, key: str) -> bool:
        return self.kv.delete_one({"_id": f"{table}/{key}"}).deleted_count == 1

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "mongodb",
            "database": self.db.name,
            "transactions": self.supports_transactions,
            "resources": self.resources.count_documents({"deleted": False}),
            "versions": self.versions.count_documents({}),
            "outbox": self.outbox_pending(),
        }

    def close(self) -> None:
        self.client.close()
