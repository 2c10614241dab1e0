"""Drain the outbox: claim events under a lease, hand each to the handler of its kind, mark it done.

Several processes may run a dispatcher: the claim gives each event to one of them, and a
lease that expires (its process died) puts the event back in the pool. A handler that
raises leaves the event to be retried later, with backoff. When a batch fails, its events are
retried one by one at once, so one bad event cannot hold back the others of its kind; an event
that still fails after ``MAX_ATTEMPTS`` claims moves to the keyed table ``DEAD_LETTERS`` with the
error, where an operator finds it (``relais outbox``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable

from ..store.base import OutboxEvent, Store

log = logging.getLogger("relais.dispatcher")

Handler = Callable[[Store, list[dict]], None]
_handlers: dict[str, list[Handler]] = {}

LEASE_S = 60.0
BATCH = 100
# 2, 4, ... 256 s of backoff between them: about eight minutes of retries before giving up.
MAX_ATTEMPTS = 9
RETRY_CAP_S = 300.0
DEAD_LETTERS = "outbox-dead"


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
    done: list[str] = []
    failed: list[tuple[OutboxEvent, Exception]] = []
    by_kind: dict[str, list[OutboxEvent]] = {}
    for event in events:
        by_kind.setdefault(event.payload.get("kind", ""), []).append(event)
    for kind, batch in by_kind.items():
        handlers = _handlers.get(kind, [])
        try:
            _run(handlers, store, batch)
            done.extend(event.id for event in batch)
        except Exception as exc:
            if len(batch) == 1:
                failed.append((batch[0], exc))
                continue
            log.warning("outbox batch of %d %r events failed (%s); retrying them one by one", len(batch), kind, exc)
            for event in batch:
                try:
                    _run(handlers, store, [event])
                    done.append(event.id)
                except Exception as one_exc:
                    failed.append((event, one_exc))
    store.outbox_done(done)
    for event, exc in failed:
        if event.attempts >= MAX_ATTEMPTS:
            log.error("outbox event %s failed %d times, moved to %s: %r", event.id, event.attempts, DEAD_LETTERS, exc)
            store.kv_put(DEAD_LETTERS, event.id, {"payload": event.payload, "attempts": event.attempts,
                                                  "error": repr(exc), "at": time.time()})
            store.outbox_done([event.id])
        else:
            log.warning("outbox event %s failed (attempt %d): %r", event.id, event.attempts, exc)
            store.outbox_release([event.id], min(RETRY_CAP_S, 2.0**event.attempts))
    return len(done)


def _run(handlers: list[Handler], store: Store, batch: list[OutboxEvent]) -> None:
    for handler in handlers:
        handler(store, [event.payload for event in batch])
