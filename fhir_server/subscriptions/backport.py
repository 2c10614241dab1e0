"""A topic-based Subscription as the R4 Backport profile writes it: reading and checking its extensions.

``criteria`` is the topic's canonical URL; ``_criteria.extension`` carries the filters; ``channel``
carries heartbeat period, timeout and maximum count; ``_payload.extension`` the payload content.
Pure functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..search.query import SearchQuery
from .topics import BACKPORT, Topic, topic_of, topic_query

FILTER_CRITERIA = f"{BACKPORT}/backport-filter-criteria"
PAYLOAD_CONTENT = f"{BACKPORT}/backport-payload-content"
HEARTBEAT_PERIOD = f"{BACKPORT}/backport-heartbeat-period"
TIMEOUT = f"{BACKPORT}/backport-timeout"
MAX_COUNT = f"{BACKPORT}/backport-max-count"
TOPIC_CANONICAL = f"{BACKPORT}/backport-topic-canonical"
SUBSCRIPTION_PROFILE = f"{BACKPORT}/backport-subscription"
NOTIFICATION_PROFILE = f"{BACKPORT}/backport-subscription-notification-r4"
STATUS_PROFILE = f"{BACKPORT}/backport-subscription-status-r4"
CAPABILITY_TOPIC = f"{BACKPORT}/capabilitystatement-subscriptiontopic-canonical"
STATUS_OPERATION = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status"
EVENTS_OPERATION = "http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events"

CONTENTS = ("empty", "id-only", "full-resource")
DEFAULT_CONTENT = "id-only"  # what a notification carries when the Subscription does not say
MAX_MAX_COUNT = 100  # events in one notification at most, whatever the Subscription asks


class Invalid(ValueError):
    """A topic-based Subscription the server cannot honour: ``message`` and the element ``path``."""

    def __init__(self, message: str, path: str):
        super().__init__(message)
        self.message = message
        self.path = path


@dataclass(frozen=True)
class TopicSubscription:
    """What delivering a topic-based Subscription needs of it."""

    topic: Topic
    query: SearchQuery
    content: str
    heartbeat_s: int | None
    timeout_s: float | None
    max_count: int


def _extensions(element: object, url: str) -> list[dict]:
    if not isinstance(element, dict):
        return []
    return [e for e in element.get("extension") or [] if isinstance(e, dict) and e.get("url") == url]


def _one(element: object, url: str, key: str) -> object:
    found = _extensions(element, url)
    return found[0].get(key) if found else None


def _count(value: object, what: str, minimum: int) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{what} is an integer of at least {minimum}")
    return value


def read(subscription: dict) -> TopicSubscription:
    """The topic-based settings of ``subscription``; ``Invalid`` naming the element that is wrong."""
    topic = topic_of(subscription.get("criteria"))
    if topic is None:
        raise Invalid(f"criteria {subscription.get('criteria')!r} is not a topic of this server", "criteria")
    filters = [e.get("valueString") for e in _extensions(subscription.get("_criteria"), FILTER_CRITERIA)]
    try:
        query = topic_query(topic, filters)  # type: ignore[arg-type]
    except ValueError as exc:
        raise Invalid(str(exc), "criteria.extension") from None
    channel = subscription.get("channel") or {}
    content = _one(channel.get("_payload"), PAYLOAD_CONTENT, "valueCode") or DEFAULT_CONTENT
    if content not in CONTENTS:
        raise Invalid(f"payload content {content!r} is not one of {', '.join(CONTENTS)}", "channel.payload")
    try:
        heartbeat = _count(_one(channel, HEARTBEAT_PERIOD, "valueUnsignedInt"), "heartbeatPeriod", 1)
        timeout = _count(_one(channel, TIMEOUT, "valueUnsignedInt"), "timeout", 1)
        max_count = _count(_one(channel, MAX_COUNT, "valuePositiveInt"), "maxCount", 1)
    except ValueError as exc:
        raise Invalid(str(exc), "channel.extension") from None
    return TopicSubscription(topic, query, content, heartbeat, float(timeout) if timeout else None,
                             min(max_count or MAX_MAX_COUNT, MAX_MAX_COUNT))
