"""Custom SearchParameters kept in the store: every server process loads them into its registry."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from .registry import get_registry

log = logging.getLogger("relais.search")

# Per store (tests open several in one process): the SearchParameter history mark at the last load.
_loaded: weakref.WeakKeyDictionary[Any, tuple] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def register(resource: dict) -> bool:
    """Add one active SearchParameter to this process's registry; False (logged) if it cannot be indexed."""
    if resource.get("status") != "active":
        return False
    try:
        get_registry().add(resource)
    except ValueError as exc:
        log.warning("SearchParameter/%s not searchable: %s", resource.get("id"), exc)
        return False
    return True


def mark(store: Any) -> tuple:
    """What changes whenever any process creates, updates or deletes a SearchParameter.

    Every such write adds one history version: the count of SearchParameter versions and the newest
    one. Two indexed look-ups, where a full load reads and registers every stored definition.
    """
    page = store.history("SearchParameter", count=1)
    newest = page.entries[0] if page.entries else None
    return page.total, (newest.id, newest.version, newest.deleted) if newest is not None else None


def load(store: Any) -> int:
    """Register every active SearchParameter of the store (at start, and by ``refresh``)."""
    # Taken before reading: a definition stored meanwhile makes the next refresh load again.
    before = mark(store)
    count, after = 0, None
    seen: dict[str, int] = {}
    while page := store.scan("SearchParameter", after, 500):
        count += sum(register(v.resource) for v in page if v.resource)
        seen.update((v.id, v.version) for v in page)
        after = page[-1].id
    newest = before[1]
    # A standalone mongod writes history before the current copy: if the newest version was not
    # readable yet, leave the mark unset so that the next refresh loads again.
    settled = newest is None or newest[2] or seen.get(newest[0]) == newest[1]
    with _lock:
        if settled:
            _loaded[store] = before
        else:
            _loaded.pop(store, None)
    return count


def refresh(store: Any) -> bool:
    """Load again if the stored SearchParameters changed since this process last loaded them.

    What a search naming an unknown parameter calls: True when definitions were (re)loaded.
    """
    with _lock:
        known = _loaded.get(store)
    if known is not None and known == mark(store):
        return False
    return load(store) > 0
