"""Custom SearchParameters kept in the store: every server process loads them into its registry."""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from ..search.registry import get_registry
from ..store.watch import history_mark, read_all

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


def load(store: Any) -> int:
    """Register every active SearchParameter of the store (at start, and by ``refresh``)."""
    versions, mark = read_all(store, "SearchParameter")
    count = sum(register(v.resource) for v in versions if v.resource)
    with _lock:
        if mark is not None:
            _loaded[store] = mark
        else:
            _loaded.pop(store, None)
    return count


def refresh(store: Any) -> bool:
    """Load again if the stored SearchParameters changed since this process last loaded them.

    What a search naming an unknown parameter calls: True when definitions were (re)loaded.
    """
    with _lock:
        known = _loaded.get(store)
    if known is not None and known == history_mark(store, "SearchParameter"):
        return False
    return load(store) > 0
