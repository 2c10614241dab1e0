"""Notification Bundles of topic-based Subscriptions (backport, R4): a ``history`` Bundle whose first entry
is the SubscriptionStatus as a Parameters resource, then one entry per focus when the content asks.

Pure: the caller hands the focus resources it read (None for a deletion, or when it may not be sent).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from .backport import NOTIFICATION_PROFILE, STATUS_PROFILE
from .ledger import Event

HANDSHAKE, HEARTBEAT, EVENT_NOTIFICATION = "handshake", "heartbeat", "event-notification"
QUERY_STATUS, QUERY_EVENT = "query-status", "query-event"


def now_instant() -> str:
    """Now as a FHIR instant (UTC, milliseconds)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


_ENTRY_REQUEST = {"POST": ("POST", "201"), "PUT": ("PUT", "200"), "PATCH": ("PATCH", "200"),
                  "DELETE": ("DELETE", "204")}


def status_parameters(base: str, subscription: dict, topic_url: str, kind: str, since_start: int,
                      events: list[tuple[Event, bool]], content: str, error: str | None = None) -> dict:  # fmt: skip
    """The SubscriptionStatus of ``subscription`` (backport-subscription-status-r4); each event with whether
    its focus may be named (its owner may read it)."""
    parameters: list[dict] = [
        {"name": "subscription", "valueReference": {"reference": f"{base}/Subscription/{subscription['id']}"}},
        {"name": "topic", "valueCanonical": topic_url},
        {"name": "status", "valueCode": subscription.get("status") or "active"},
        {"name": "type", "valueCode": kind},
        # string in R4: the count is an int64 in R5
        {"name": "events-since-subscription-start", "valueString": str(since_start)},
    ]
    for event, shown in events:
        parts: list[dict] = [{"name": "event-number", "valueString": str(event.number)},
                             {"name": "timestamp", "valueInstant": event.timestamp}]
        if content != "empty" and shown:
            parts.append({"name": "focus", "valueReference": {"reference": f"{base}/{event.type}/{event.id}"}})
        parameters.append({"name": "notification-event", "part": parts})
    if error:
        parameters.append({"name": "error", "valueCodeableConcept": {"text": error}})
    return {"resourceType": "Parameters", "id": str(uuid.uuid4()), "meta": {"profile": [STATUS_PROFILE]},
            "parameter": parameters}


def notification(base: str, subscription: dict, topic_url: str, kind: str, since_start: int,
                 events: list[tuple[Event, dict | None, bool]], content: str,
                 error: str | None = None) -> dict:  # fmt: skip
    """The notification Bundle of ``kind`` for ``events``: each with its focus resource (None for a deletion)
    and whether it may be shown at all (not: the event keeps its number, without focus or entry)."""
    status = status_parameters(base, subscription, topic_url, kind, since_start,
                               [(e, shown) for e, _, shown in events], content, error)
    entries: list[dict] = [{
        "fullUrl": f"urn:uuid:{status['id']}",
        "resource": status,
        "request": {"method": "GET", "url": f"{base}/Subscription/{subscription['id']}/$status"},
        "response": {"status": "200"},
    }]
    if content != "empty":
        for event, resource, shown in events:
            if not shown:
                continue
            method, code = _ENTRY_REQUEST.get(event.method, ("PUT", "200"))
            url = event.type if method == "POST" else f"{event.type}/{event.id}"
            entry: dict = {"fullUrl": f"{base}/{event.type}/{event.id}"}
            if content == "full-resource" and resource is not None:
                entry["resource"] = resource
            entry["request"] = {"method": method, "url": url}
            entry["response"] = {"status": code}
            entries.append(entry)
    return {"resourceType": "Bundle", "id": str(uuid.uuid4()), "meta": {"profile": [NOTIFICATION_PROFILE]},
            "type": "history", "timestamp": now_instant(), "entry": entries}
