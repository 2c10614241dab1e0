"""Drain the outbox: claim events under a lease, hand each to the handler of its kind, mark it done.

Each application keeps one ``Outbox``: the handlers of each kind it runs, registered when it is
created, so two apps in one process (two stores) never run each other's handlers. Several processes
may run a dispatcher: the claim gives each event to one of them, and a lease that expires (its
process died) puts the event back in the pool. A handler that raises leaves the event to be retried
later, with backoff. When a batch fails, its events are retried one by one at once, so one bad event
cannot hold back the others of its kind; an event that still fails after ``MAX_ATTEMPTS`` claims moves
to the dead letters with the error, where an operator finds it (``relais outbox``). A kind may register
what to do when one of its events becomes a dead letter.
An event may carry ``items`` (the versions one write stored): each is handed out as a payload of the
event's kind, and the event succeeds or fails as a whole. An event of a kind with no handler in this
app counts as done.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

from ..store.base import OutboxEvent, Store
from . import dead_letters

log = logging.getLogger("relais.dispatcher")

Handler = Callable[[Store, list[dict]], None]
DeadLetterHandler = Callable[[Store, dict, str], None]

EXTENSION = "relais_outbox"  # app.extensions key of the app's Outbox
LEASE_S = 60.0
BATCH = 100
# 2, 4, ... 256 s of backoff between them: about eight minutes of retries before giving up.
MAX_ATTEMPTS = 9
RETRY_CAP_S = 300.0


class Outbox:
    """One application's outbox handlers, by event kind, and the dispatcher that runs them."""

    def __init__(self) -> None:
        self.handlers: dict[str, list[Handler]] = {}
        self.dead_letter_handlers: dict[str, list[DeadLetterHandler]] = {}

    def register(self, kind: str, handler: Handler) -> None:
        """Call ``handler(store, payloads)`` with the events of ``kind`` of each claim, all at once,
        so it can write them in one transaction."""
        if handler not in self.handlers.setdefault(kind, []):
            self.handlers[kind].append(handler)

    def register_dead_letter(self, kind: str, handler: DeadLetterHandler) -> None:
        """Call ``handler(store, payload, error)`` when an event of ``kind`` moves to the dead letters."""
        if handler not in self.dead_letter_handlers.setdefault(kind, []):
            self.dead_letter_handlers[kind].append(handler)

    def dispatch_once(self, store: Store, limit: int = BATCH) -> int:
        """Claim and handle one batch of ``store``'s events; return how many events were completed."""
        events = store.outbox_claim(worker_name(), LEASE_S, limit)
        done: list[str] = []
        failed: list[tuple[OutboxEvent, Exception]] = []
        by_kind: dict[str, list[OutboxEvent]] = {}
        for event in events:
            by_kind.setdefault(event.payload.get("kind", ""), []).append(event)
        for kind, batch in by_kind.items():
            handlers = self.handlers.get(kind, [])
            try:
                _run(handlers, store, batch)
                done.extend(event.id for event in batch)
            except Exception as exc:
                if len(batch) == 1:
                    failed.append((batch[0], exc))
                    continue
                log.warning("outbox batch of %d %r events failed (%s); retrying them one by one",
                            len(batch), kind, exc)
                for event in batch:
                    try:
                        _run(handlers, store, [event])
                        done.append(event.id)
                    except Exception as one_exc:
                        failed.append((event, one_exc))
        store.outbox_done(done)
        for event, exc in failed:
            if event.attempts >= MAX_ATTEMPTS:
                log.error("outbox event %s failed %d times, moved to %s: %r",
                          event.id, event.attempts, dead_letters.DEAD_LETTERS, exc)
                dead_letters.keep(store, event, repr(exc))
                for payload in payloads_of(event.payload):
                    self._dead_letter(store, payload, repr(exc))
            else:
                log.warning("outbox event %s failed (attempt %d): %r", event.id, event.attempts, exc)
                store.outbox_release([event.id], min(RETRY_CAP_S, 2.0**event.attempts))
        return len(done)

    def drain(self, store: Store) -> int:
        """Dispatch until a claim completes nothing; how many events were completed in all."""
        total = 0
        while completed := self.dispatch_once(store):
            total += completed
        return total

    def _dead_letter(self, store: Store, payload: dict, error: str) -> None:
        for handler in self.dead_letter_handlers.get(payload.get("kind", ""), []):
            try:
                handler(store, payload, error)
            except Exception:  # the event is kept in the dead letters either way
                log.exception("dead-letter handler for a %r event failed", payload.get("kind"))


def outbox_of(app: Any) -> Outbox:
    """The Outbox of a Flask app built by create_app."""
    return app.extensions[EXTENSION]


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


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
