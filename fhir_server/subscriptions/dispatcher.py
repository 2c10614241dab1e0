"""Drain the outbox: claim events under a lease, hand each to the handler of its kind, mark it done.

Several processes may run a dispatcher: the claim gives each event to one of them, and a
lease that expires (its process died) puts the event back in the pool. A handler that
raises leaves the event to be retried later, with backoff. When a batch fails, its events are
retried one by one at once, so one bad event cannot hold back the others of its kind; an event
that still fails after ``MAX_ATTEMPTS`` claims moves to the keyed table ``DEAD_LETTERS`` with the
error, where an operator finds it (``relais outbox``). A handler that can tell which payloads of its
batch failed raises ``PartialFailure`` (the others are done, not run again: rest-hook deliveries);
a kind may register what to do when one of its events becomes a dead letter. An event may carry
``items`` (the versions one write stored): each is handed out as a payload of the event's kind,
and the event succeeds or fails as a whole.
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
DeadLetterHandler = Callable[[Store, dict, str], None]
_handlers: dict[str, list[Handler]] = {}
_dead_letter_handlers: dict[str, list[DeadLetterHandler]] = {}

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


def register_dead_letter_handler(kind: str, handler: DeadLetterHandler) -> None:
    """Call ``handler(store, payload, error)`` when an event of ``kind`` moves to the dead letters."""
    if handler not in _dead_letter_handlers.setdefault(kind, []):
        _dead_letter_handlers[kind].append(handler)


class PartialFailure(Exception):
    """Raised by a handler whose batch partly failed: ``failures`` maps payload positions to their error.

    The other payloads of the batch count as done. Meant for a kind with one handler.
    """

    def __init__(self, failures: dict[int, Exception]):
        super().__init__(f"{len(failures)} event(s) of the batch failed: " + "; ".join(map(repr, failures.values())))
        self.failures = failures


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
        except PartialFailure as partial:
            owners = [event.id for event in batch for _ in payloads_of(event.payload)]
            failures = {owners[i]: exc for i, exc in partial.failures.items()}
            for event in batch:
                if event.id in failures:
                    failed.append((event, failures[event.id]))
                else:
                    done.append(event.id)
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
            for payload in payloads_of(event.payload):
                _dead_letter(store, payload, repr(exc))
        else:
            log.warning("outbox event %s failed (attempt %d): %r", event.id, event.attempts, exc)
            store.outbox_release([event.id], min(RETRY_CAP_S, 2.0**event.attempts))
    return len(done)


def payloads_of(payload: dict) -> list[dict]:
    """What a handler is given for one event: its ``items`` as payloads of its kind, or the payload itself.

    An event with items (the versions of one write) succeeds or fails as a whole: a retry hands all
    of them again, so handlers of such kinds must be idempotent.
    """
    items = payload.get("items")
    if items is None:
        return [payload]
    return [{"kind": payload.get("kind"), **item} for item in items]


def _run(handlers: list[Handler], store: Store, batch: list[OutboxEvent]) -> None:
    payloads = [payload for event in batch for payload in payloads_of(event.payload)]
    for handler in handlers:
        handler(store, payloads)


def _dead_letter(store: Store, payload: dict, error: str) -> None:
    for handler in _dead_letter_handlers.get(payload.get("kind", ""), []):
        try:
            handler(store, payload, error)
        except Exception:  # the event is kept in the dead letters either way
            log.exception("dead-letter handler for a %r event failed", payload.get("kind"))
