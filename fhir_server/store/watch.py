"""Knowing, from any process, whether the stored resources of a type changed: what in-memory copies
(custom SearchParameters, the Subscription index) reload by."""

from __future__ import annotations

from .base import Store, StoredVersion


def history_mark(store: Store, resource_type: str) -> tuple:
    """What changes whenever any process creates, updates or deletes a resource of ``resource_type``.

    Every such write adds one history version: the count of versions and the newest one. Two indexed
    look-ups, where a reload reads every stored resource of the type.
    """
    page = store.history(resource_type, count=1)
    newest = page.entries[0] if page.entries else None
    return page.total, (newest.id, newest.version, newest.deleted) if newest is not None else None


def read_all(store: Store, resource_type: str) -> tuple[list[StoredVersion], tuple | None]:
    """Every current resource of the type, and the history mark they stand for.

    The mark is taken before reading, so a write made meanwhile makes the next check reload. It is
    None when the newest version was not readable yet (a standalone mongod writes history before the
    current copy): keep no mark then, and the next check loads again.
    """
    before = history_mark(store, resource_type)
    versions: list[StoredVersion] = []
    after = None
    while page := store.scan(resource_type, after, 500):
        versions.extend(page)
        after = page[-1].id
    newest = before[1]
    seen = {v.id: v.version for v in versions}
    settled = newest is None or newest[2] or seen.get(newest[0], 0) >= newest[1]
    return versions, before if settled else None
