"""Wake a process's dispatcher as soon as a write leaves events, rather than at its next poll.

A triage alert must reach the coordinator's worklist within a second of the measure being stored;
polling every second alone would spend that whole budget waiting. The bell is per store object, so two
apps in one process (two stores) wake only their own dispatcher. Other processes still poll: the
process that wrote is the one woken, and it claims the events.
"""

from __future__ import annotations

import threading
import weakref

_bells: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def bell(store: object) -> threading.Event:
    """The event the dispatcher of ``store`` waits on (made on first use)."""
    with _lock:
        event = _bells.get(store)
        if event is None:
            event = _bells[store] = threading.Event()
        return event


def ring(store: object) -> None:
    """Tell the dispatcher of ``store`` (if this process runs one) that events are waiting."""
    event = _bells.get(store)
    if event is not None:
        event.set()
