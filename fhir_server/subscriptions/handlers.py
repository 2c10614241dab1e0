"""The outbox handlers of Subscriptions, both kinds: what a written resource calls for is filed in its
endpoints' lanes, and the courier delivers it (courier.py), off the dispatcher's thread.

Topic-based ones first: their numbering is idempotent, so when the criteria-based part fails and the
event is handled again, the topic part repeats nothing a receiver would count twice.
"""

from __future__ import annotations

from typing import Any

from . import notify, topic_events
from .acceptance import endpoint_of
from .courier import for_store
from .lanes import Filed, criteria_entry, lane_of
from .notify import DELIVERY_KIND
from .settings import Settings

__all__ = ["DELIVERY_KIND", "file_deliveries", "match_resources"]


def _filed(settings: Settings, subscription_id: str, endpoint: str, resource_type: str, id: str,
           version: int) -> Filed:  # fmt: skip
    lane = lane_of(endpoint, subscription_id, settings.endpoint_in_flight)
    return Filed(lane, endpoint, criteria_entry(subscription_id, resource_type, id, version))


def match_resources(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``resource`` events (bind ``settings`` to register it): topic-based Subscriptions' events
    and criteria-based ones' notifications filed in their endpoints' lanes, in one go."""
    filed = topic_events.events_to_file(settings, store, payloads)
    for subscription, stored in notify.deliveries(settings, store, payloads):
        filed.append(_filed(settings, subscription.id, subscription.endpoint, stored.resource_type, stored.id,
                            stored.version))
    if filed:
        for_store(store, settings).file(filed)


def file_deliveries(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``rest-hook`` events (bind ``settings`` to register it): criteria-based deliveries an
    operator put back from the dead letters (``relais outbox --retry``) go to their lanes again."""
    filed = []
    for payload in payloads:
        stored = store.read("Subscription", payload["subscription"])
        if stored is None or stored.deleted or stored.resource is None:
            continue  # nobody to deliver to any more
        endpoint = endpoint_of(stored.resource)
        filed.append(_filed(settings, payload["subscription"], endpoint, payload["type"], payload["id"],
                            payload["version"]))
    if filed:
        for_store(store, settings).file(filed)
