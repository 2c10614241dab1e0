"""The courier's lanes as data: each endpoint's durable queues of notifications, their entries and keys,
and the retry schedule. The outbox handlers file into them (handlers.py, topic_events.py); the courier
delivers them (courier.py)."""

from __future__ import annotations

import hashlib
import itertools
import time
from dataclasses import dataclass

LANES = "topic-lanes"  # lane -> {"endpoint": url}: every lane that ever had a notification
FIRST_RETRY_S = 2.0
RETRY_CAP_S = 900.0
EVENT, HANDSHAKE, HEARTBEAT = "event", "handshake", "heartbeat"
CRITERIA = "criteria"  # a criteria-based (R4) Subscription's notification of one resource version
_sequence = itertools.count()


def backoff(attempts: int) -> float:
    """Seconds to wait after the ``attempts``-th failure: 2, 4, 8 ... capped at 15 minutes."""
    return min(RETRY_CAP_S, FIRST_RETRY_S * 2.0 ** max(attempts - 1, 0))


def lane_of(endpoint: str, subscription_id: str, in_flight: int) -> str:
    """The lane of ``subscription_id``'s notifications: one of ``in_flight`` lanes of its endpoint."""
    digest = hashlib.sha256(endpoint.encode()).hexdigest()[:24]
    slot = int(hashlib.sha256(subscription_id.encode()).hexdigest()[:8], 16) % max(in_flight, 1)
    return f"{digest}.{slot}"


def lane_table(lane: str) -> str:
    """The keyed table holding ``lane``'s queue."""
    return f"topic-lane:{lane}"


@dataclass(frozen=True)
class Filed:
    """One notification to file: its lane, its endpoint, and the queue entry."""

    lane: str
    endpoint: str
    entry: dict


def entry(subscription_id: str, kind: str, number: int | None = None) -> dict:
    """A queue entry: a numbered event, a handshake or a heartbeat of ``subscription_id``."""
    return {"sid": subscription_id, "kind": kind, "n": number, "filed": time.time(), "attempts": 0,
            "first_failure": None, "next_at": 0.0, "error": None}


def criteria_entry(subscription_id: str, resource_type: str, id: str, version: int) -> dict:
    """A queue entry of a criteria-based Subscription: the resource version it notifies (read when sent)."""
    return {**entry(subscription_id, CRITERIA), "type": resource_type, "id": id, "version": version}


def target_of(doc: dict) -> str:
    """The resource version a criteria-based entry notifies, as ``Type/id/_history/n``."""
    return f"{doc['type']}/{doc['id']}/_history/{doc['version']}"


def entry_key(doc: dict) -> str:
    """The key of a queue entry: its lane delivers in the order of these keys."""
    # filing order first; then the event number, so one Subscription's events sort right within a tick
    return f"{time.time_ns():020d}.{next(_sequence) % 1000000:06d}.{doc['sid']}.{doc['n'] or 0:012d}.{doc['kind']}"
