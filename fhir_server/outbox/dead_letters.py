"""Events that kept failing: kept in the keyed table ``DEAD_LETTERS`` for an operator (``relais outbox``)."""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..store.base import OutboxEvent, Store

DEAD_LETTERS = "outbox-dead"


def keep(store: Store, event: OutboxEvent, error: str) -> None:
    """Move ``event`` out of the outbox into the dead letters, with its last error."""
    store.kv_put(DEAD_LETTERS, event.id, {"payload": event.payload, "attempts": event.attempts,
                                          "error": error, "at": time.time()})
    store.outbox_done([event.id])


def listed(store: Store) -> list[tuple[str, dict]]:
    """The dead letters: (event id, its document) pairs."""
    return list(store.kv_list(DEAD_LETTERS))


def requeue(store: Store, letters: Iterable[tuple[str, dict]]) -> int:
    """Put each dead letter's payload back in the outbox as a new event; how many went back."""
    count = 0
    for key, doc in letters:
        with store.transaction() as txn:
            txn.outbox_append(doc["payload"])
        store.kv_delete(DEAD_LETTERS, key)
        count += 1
    return count
