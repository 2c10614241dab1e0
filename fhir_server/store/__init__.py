"""Open the store a URL names: ``sqlite:///path`` (embedded default) or ``mongodb://...``."""

from __future__ import annotations

from typing import Any

from .base import HistoryPage, OutboxEvent, SearchResult, Store, StoredVersion, TransactionsUnsupported, VersionConflict

__all__ = [
    "HistoryPage",
    "OutboxEvent",
    "SearchResult",
    "Store",
    "StoredVersion",
    "TransactionsUnsupported",
    "VersionConflict",
    "open_store",
]


def open_store(url: str, client: Any = None, database: str | None = None) -> Store:
    """The backend for ``url``; ``client`` lets tests hand the MongoDB backend a mongomock client."""
    if url.startswith("sqlite:///"):
        from .sqlite import SQLiteStore

        return SQLiteStore(url)
    if url.startswith(("mongodb://", "mongodb+srv://")):
        from .mongodb import MongoStore

        return MongoStore(url, client=client, database=database)
    raise ValueError(f"unsupported store URL {url!r}")
