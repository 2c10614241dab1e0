"""Event numbers of topic-based Subscriptions: gapless, increasing, assigned once per event, kept in the store.

A receiver tells it missed a notification by a gap in the numbers, then asks ``$events`` for it:
so a number, once assigned, stands for one event forever, whatever process assigned it or died.

Assigning is an insert-if-absent of the key ``<subscription>#<n>`` in the keyed table ``EVENTS``
(``kv_insert``): the store decides atomically, across processes, which event gets ``n``. The
search for the first free ``n`` starts from a hint (``COUNTERS``) that may lag but never leads. A
resource event handled twice (its dispatcher died before marking it done) gets the number it got
the first time: ``SOURCES`` maps it to its number, and an event record found while searching with
the same source is reused (the process died between the two inserts).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

EVENTS = "topic-events"
SOURCES = "topic-event-sources"
COUNTERS = "topic-event-counters"


@dataclass(frozen=True)
class Event:
    """One numbered event of one Subscription: its focus version and when it happened."""

    number: int
    timestamp: str  # FHIR instant of the focus version's lastUpdated (or of the deletion)
    type: str
    id: str
    version: int
    method: str  # POST | PUT | PATCH | DELETE

    def as_doc(self, source: str) -> dict:
        return {"n": self.number, "ts": self.timestamp, "type": self.type, "id": self.id, "version": self.version,
                "method": self.method, "source": source}


def _key(subscription_id: str, number: int) -> str:
    return f"{subscription_id}#{number:012d}"


def _event(doc: dict) -> Event:
    return Event(doc["n"], doc["ts"], doc["type"], doc["id"], doc["version"], doc["method"])


def source_of(resource_type: str, id: str, version: int) -> str:
    """What makes an event one and the same, handled once or twice: the resource version it is about."""
    return f"{resource_type}/{id}/_history/{version}"


def assign(store: Any, subscription_id: str, focus: Event) -> Event:
    """``focus`` (its ``number`` ignored) with the event number ``subscription_id`` gives it, assigned now
    or the first time the same version was seen."""
    source = source_of(focus.type, focus.id, focus.version)
    known = store.kv_get(SOURCES, f"{subscription_id}|{source}")
    if known is not None:
        doc = store.kv_get(EVENTS, _key(subscription_id, known["n"]))
        if doc is not None:
            return _event(doc)
    hint = store.kv_get(COUNTERS, subscription_id)
    number = (hint["last"] if hint else 0) + 1
    while True:
        event = Event(number, focus.timestamp, focus.type, focus.id, focus.version, focus.method)
        if store.kv_insert(EVENTS, _key(subscription_id, number), event.as_doc(source), durable=False):
            break
        taken = store.kv_get(EVENTS, _key(subscription_id, number))
        if taken is not None and taken.get("source") == source:
            event = _event(taken)  # assigned before this process (or its predecessor) died
            break
        number += 1
    store.kv_put(SOURCES, f"{subscription_id}|{source}", {"n": event.number}, durable=False)
    store.kv_put(COUNTERS, subscription_id, {"last": event.number, "at": time.time()}, durable=False)
    return event


def last_number(store: Any, subscription_id: str) -> int:
    """The number of the newest event of ``subscription_id`` (0: none yet): ``events-since-subscription-start``."""
    hint = store.kv_get(COUNTERS, subscription_id)
    number = hint["last"] if hint else 0
    while store.kv_get(EVENTS, _key(subscription_id, number + 1)) is not None:
        number += 1  # the hint lags when a process died between its two writes
    return number


def events(store: Any, subscription_id: str, numbers: list[int]) -> list[Event]:
    """The events of ``subscription_id`` with these numbers, in that order (missing ones skipped)."""
    found = []
    for number in numbers:
        doc = store.kv_get(EVENTS, _key(subscription_id, number))
        if doc is not None:
            found.append(_event(doc))
    return found


def focus(store: Any, event: Event) -> tuple[dict | None, dict | None]:
    """The resource an event is about as stored (None for a deletion), and the one access is decided on: that
    resource, or for a deletion the version it deleted (who could read it may know it was deleted)."""
    stored = store.read(event.type, event.id, event.version)
    resource = stored.resource if stored is not None else None
    if resource is not None or event.version < 2:
        return resource, resource
    before = store.read(event.type, event.id, event.version - 1)
    return None, before.resource if before is not None else None
