"""Drain the outbox: claim events under a lease, hand each to the handler of its kind, mark it done.

Several processes may run a dispatcher: the claim gives each event to one of them, and a
lease that expires (its process died) puts the event back in the pool. A handler that
raises leaves the event to be retried later, with backoff.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

from ..store.base import Store

log = logging.getLogger("relais.dispatcher")

Handler = Callable[[Store, list[dict]], None]
_handlers: dict[str, list[Handler]] = {}

LEASE_S = 60.0
BATCH = 100


def register_handler(kind: str, handler: Handler) -> None:
    """Call ``handler(store, payloads)`` with the events of ``kind`` of each claim, all at once,
    so it can write them in one transaction."""
    if handler not in _handlers.setdefault(kind, []):
        _handlers[kind].append(handler)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def dispatch_once(store: Store, limit: int = BATCH) -> int:
    """Claim and handle one batch; return how many events were completed."""
    events = store.outbox_claim(worker_name(), LEASE_S, limit)
    done, failed = [], []
    by_kind: dict[str, list] = {}
    for event in events:
        by_kind.setdefault(event.payload.get("kind", ""), []).append(event)
    for kind, batch in by_kind.items():
        try:
            for handler in _handlers.get(kind, []):
                handler(store, [event.payload for event in batch])
        except Exception:
            log.exception("outbox batch of %d %r events failed", len(batch), kind)
            failed.extend(batch)
        else:
            done.extend(event.id for event in batch)
    store.outbox_done(done)
    for event in failed:
        store.outbox_release([event.id], min(300.0, 2.0 ** event.attempts))
    return len(done)
