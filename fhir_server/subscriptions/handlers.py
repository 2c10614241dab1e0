"""The one outbox handler of ``resource`` events for Subscriptions, both kinds.

Topic-based ones first: their numbering is idempotent, so when the criteria-based part fails and the
event is handled again, the topic part repeats nothing a receiver would count twice.
"""

from __future__ import annotations

from typing import Any

from . import notify, topic_events
from .settings import Settings


def match_resources(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``resource`` events (bind ``settings`` to register it): topic-based Subscriptions' events
    filed in their endpoints' lanes, criteria-based ones' deliveries queued in the outbox."""
    topic_events.file_events(settings, store, payloads)
    notify.queue_deliveries(settings, store, payloads)
