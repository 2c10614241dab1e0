"""Stores for tests: one way to build each backend, and to fill one."""

from __future__ import annotations

import functools
import inspect
import os
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path

from fhir_server.search.extract import index_values
from fhir_server.store import open_store
from fhir_server.store.base import StoredVersion

# A real MongoDB joins the backends when RELAIS_TEST_MONGODB_URI names one.
BACKENDS = ["sqlite", "mongomock"] + (["mongodb"] if os.environ.get("RELAIS_TEST_MONGODB_URI") else [])


def make_store(kind: str, directory: Path, *, durable: bool = True):
    """A fresh, empty store of backend ``kind`` (sqlite, mongomock, mongodb); a SQLite file goes in ``directory``.

    ``durable=False``: SQLite commits without an fsync each, for tests about something else than durability.
    """
    if kind == "sqlite":
        return open_store(f"sqlite:///{directory / 'relais.db'}" + ("" if durable else "?synchronous=normal"))
    if kind == "mongomock":
        return open_store("mongodb://localhost/relais_test", client=_mongomock_client())
    if kind == "mongodb":
        # A database of its own per store, dropped by close_store.
        return open_store(os.environ["RELAIS_TEST_MONGODB_URI"], database=f"relais_test_{uuid.uuid4().hex[:8]}")
    raise ValueError(f"unknown store backend {kind!r}")


_MONGOMOCK_LOCK = threading.RLock()


def _mongomock_client():
    """A mongomock client whose every call is serialized: mongomock is not thread-safe (seen in CI: "OrderedDict
    mutated during iteration" inside it and a write lost), and a live server's request threads, the outbox
    dispatcher and the rest-hook courier's lanes use one store at once. A real MongoDB needs no such lock."""
    import mongomock
    import mongomock.collection
    import mongomock.database

    if not getattr(mongomock, "_relais_serialized", False):
        for cls in (mongomock.MongoClient, mongomock.database.Database, mongomock.collection.Collection,
                    mongomock.collection.Cursor):
            for name, attr in list(vars(cls).items()):
                if inspect.isgeneratorfunction(attr):
                    setattr(cls, name, _serialized(_listed(attr)))  # iterated under the lock too
                elif inspect.isfunction(attr) and (not name.startswith("__") or name == "__next__"):
                    setattr(cls, name, _serialized(attr))
        mongomock._relais_serialized = True
    return mongomock.MongoClient()


def _listed(generator_function):
    @functools.wraps(generator_function)
    def listed(*args, **kwargs):
        return iter(list(generator_function(*args, **kwargs)))

    return listed


def _serialized(function):
    @functools.wraps(function)
    def serialized(*args, **kwargs):
        with _MONGOMOCK_LOCK:
            return function(*args, **kwargs)

    return serialized


def close_store(store) -> None:
    """Close ``store``; a real MongoDB's test database is dropped first."""
    import pymongo

    if isinstance(getattr(store, "client", None), pymongo.MongoClient):  # mongomock's client is not one
        store.client.drop_database(store.db.name)
    store.close()


def put_all(store, resources: Iterable[dict]) -> None:
    """Write ``resources`` (each with an id and meta.lastUpdated) as version 1, in one transaction."""
    with store.transaction() as txn:
        for r in resources:
            version = StoredVersion(r["resourceType"], r["id"], 1, r["meta"]["lastUpdated"], "PUT", r)
            txn.put(version, index_values(r))
