"""Custom SearchParameters kept in the store: every server process loads them into its registry."""

from __future__ import annotations

import logging
from typing import Any

from .registry import get_registry

log = logging.getLogger("relais.search")


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
    """Register every active SearchParameter of the store (at start, and when a search names an unknown one)."""
    count, after = 0, None
    while page := store.scan("SearchParameter", after, 500):
        count += sum(register(v.resource) for v in page if v.resource)
        after = page[-1].id
    return count
