"""Topic-based Subscriptions' part of the ``resource`` events: match each stored version against the topics'
active Subscriptions, give each match its event number: a notification to file in its endpoint's lane
(the courier sends it, off the dispatcher's thread). A topic-based Subscription becoming active
gets its handshake filed the same way.

Handled twice (a dispatcher died before marking the event done), a version keeps its event numbers:
it may be filed twice, and a receiver deduplicating by event number sees it once.
"""

from __future__ import annotations

import time
from typing import Any

from . import index as subscription_index
from . import ledger
from .acceptance import endpoint_of
from .index import TopicActive
from .lanes import EVENT, HANDSHAKE, Filed, entry, lane_of
from .notify import matching, may_receive, owner_lookups, owner_reader
from .settings import Settings
from .topics import interaction_of, is_topic_criteria


def _instant(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _handshake(store: Any, settings: Settings, payload: dict) -> Filed | None:
    """The handshake a topic-based Subscription is due when this version made it active."""
    if payload.get("method") == "DELETE":
        return None
    stored = store.read("Subscription", payload["id"], payload["version"])
    resource = stored.resource if stored is not None else None
    if resource is None or resource.get("status") != "active" or not is_topic_criteria(resource.get("criteria")):
        return None
    if payload["version"] > 1:
        before = store.read("Subscription", payload["id"], payload["version"] - 1)
        if before is not None and before.resource is not None and before.resource.get("status") == "active":
            return None
    endpoint = endpoint_of(resource)
    lane = lane_of(endpoint, resource["id"], settings.endpoint_in_flight)
    return Filed(lane, endpoint, entry(resource["id"], HANDSHAKE))


def _focus(store: Any, payload: dict) -> dict | None:
    """What a version's topics match on: the version itself, or for a deletion the version it deleted."""
    version = payload["version"] - 1 if payload.get("method") == "DELETE" else payload["version"]
    if version < 1:
        return None
    stored = store.read(payload["type"], payload["id"], version)
    return stored.resource if stored is not None else None


def events_to_file(settings: Settings, store: Any, payloads: list[dict]) -> list[Filed]:
    """What ``resource`` events call for: numbered events (and handshakes) to file in their lanes."""
    index = subscription_index.current_topics(store)
    filed: list[Filed] = []
    now = time.time()
    lookups = can_read = None
    for payload in payloads:
        if payload.get("type") == "Subscription" and (handshake := _handshake(store, settings, payload)):
            filed.append(handshake)
        subscriptions: tuple[TopicActive, ...] = subscription_index.candidates(index, payload.get("type", ""), now)
        interaction = interaction_of(payload.get("method", ""), payload.get("version", 0))
        subscriptions = tuple(s for s in subscriptions if interaction in s.settings.topic.interactions)
        if not subscriptions:
            continue
        resource = _focus(store, payload)
        if resource is None:
            continue
        if lookups is None:
            lookups, can_read = owner_lookups(store, settings.auth), owner_reader(store)
        for subscription in matching(subscriptions, resource, lookups=lookups):  # type: ignore[arg-type]
            if not may_receive(settings.auth, subscription.owner, resource, can_read):  # type: ignore[arg-type]
                continue
            focus = ledger.Event(0, payload.get("last_updated") or _instant(now), payload["type"], payload["id"],
                                 payload["version"], payload.get("method") or "PUT")
            event = ledger.assign(store, subscription.id, focus)
            lane = lane_of(subscription.endpoint, subscription.id, settings.endpoint_in_flight)
            filed.append(Filed(lane, subscription.endpoint, entry(subscription.id, EVENT, event.number)))
    return filed

