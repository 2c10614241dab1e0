"""The store interface: one protocol, two backends (sqlite, mongodb), one contract suite.

Backends know nothing of FHIR beyond the records below and the search IR they are handed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..search.query import IndexRow, SearchQuery


class VersionConflict(Exception):
    """Another writer stored the same (type, id, version) first; the write path retries."""


class TransactionsUnsupported(Exception):
    """The deployment cannot make several writes atomic (standalone mongod)."""


@dataclass
class StoredVersion:
    """One version of one resource, as kept in the current table and in history."""

    resource_type: str
    id: str
    version: int
    last_updated: str  # FHIR instant, UTC
    method: str  # POST | PUT | PATCH | DELETE: the interaction that made this version
    resource: dict | None  # None for a deletion
    deleted: bool = False


@dataclass
class HistoryPage:
    entries: list[StoredVersion]
    total: int
    next_cursor: str | None = None


@dataclass
class SearchResult:
    ids: list[str]
    total: int | None


@dataclass
class OutboxEvent:
    id: str
    payload: dict
    attempts: int = 0
    extra: dict = field(default_factory=dict)


class Transaction(Protocol):
    """The writes inside one ``Store.transaction()``: all stored, or none."""

    def current(self, resource_type: str, id: str) -> StoredVersion | None: ...

    def put(self, version: StoredVersion, index: list[IndexRow]) -> None:
        """Store a new version: current row, history entry and index values (raises VersionConflict)."""

    def outbox_append(self, payload: dict) -> None: ...

    def kv_put(self, table: str, key: str, doc: dict) -> None:
        """``Store.kv_put`` inside the transaction: stored exactly when its other writes are."""

    def kv_delete(self, table: str, key: str) -> None:
        """``Store.kv_delete`` inside the transaction."""

    def search(self, query: SearchQuery) -> SearchResult:
        """Search inside the transaction (conditional interactions decide on what it sees)."""

    def reindex(self, resource_type: str, id: str, index: list[IndexRow]) -> None:
        """Replace a current resource's index rows without a new version ($reindex)."""


class Store(Protocol):
    """What the rest of Relais may ask of a backend."""

    supports_transactions: bool  # False: several writes cannot be made all-or-nothing

    def transaction(self, durable: bool = True) -> AbstractContextManager[Transaction]:
        """Atomic writes. ``durable=False`` (audit trails): survives a process crash, not a power cut."""

    def read(self, resource_type: str, id: str, version: int | None = None) -> StoredVersion | None: ...

    def read_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        """Current, non-deleted versions of ``ids``, in the order given (missing ones skipped)."""

    def scan(self, resource_type: str, after: str | None, limit: int) -> list[StoredVersion]:
        """Current, non-deleted resources of a type with id > ``after``, by id: one page of a full pass."""

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        since: str | None = None,
        cursor: str | None = None,
        count: int = 20,
    ) -> HistoryPage: ...

    def search(self, query: SearchQuery) -> SearchResult: ...

    def outbox_enqueue(self, payloads: list[dict]) -> None:
        """Events not tied to a resource write (the audit trail), in a write of their own that waits
        for no resource write; survives a process crash, not a power cut."""

    def outbox_claim(self, worker: str, lease_s: float, limit: int) -> list[OutboxEvent]: ...

    def outbox_done(self, event_ids: list[str]) -> None: ...

    def outbox_release(self, event_ids: list[str], delay_s: float) -> None:
        """Give claimed events back to the pool, claimable again after ``delay_s``."""

    def outbox_pending(self) -> int: ...

    def outbox_oldest_unclaimed(self) -> float | None:
        """When (epoch seconds) the oldest event of the outbox that no dispatcher has claimed yet was queued;
        None when there is none. Retries waiting their backoff are not counted: they were claimed."""

    # Small keyed tables for what is not a FHIR resource (OAuth clients, raw HL7 v2, jobs).
    def kv_put(self, table: str, key: str, doc: dict, durable: bool = True) -> None: ...

    def kv_insert(self, table: str, key: str, doc: dict, durable: bool = True) -> bool:
        """Insert if ``key`` is absent; False when it exists (replay detection, locks)."""

    def kv_get(self, table: str, key: str) -> dict | None: ...

    def kv_list(self, table: str) -> Iterator[tuple[str, dict]]: ...

    def kv_delete(self, table: str, key: str) -> bool: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
