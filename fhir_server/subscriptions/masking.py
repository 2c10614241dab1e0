"""``channel.header`` values (often an endpoint's bearer token) are shown to the Subscription's owner only.

Any other client reading the Subscription (read, search, history, a Bundle's response) sees each header
name with its value masked. Pure: the REST layer applies it to every response body.
"""

from __future__ import annotations

from .acceptance import owner_of

MASK = "****"


def _masked_subscription(subscription: dict) -> dict:
    channel = subscription.get("channel")
    if not isinstance(channel, dict) or not channel.get("header"):
        return subscription
    lines = [f"{line.partition(':')[0]}: {MASK}" if isinstance(line, str) else MASK for line in channel["header"]]
    return {**subscription, "channel": {**channel, "header": lines}}


def _for(resource: object, viewer: str) -> object:
    if isinstance(resource, dict) and resource.get("resourceType") == "Subscription" and owner_of(resource) != viewer:
        return _masked_subscription(resource)
    return resource


def masked(body: dict, viewer: str | None) -> dict:
    """``body`` (a resource, or a Bundle of them) as ``viewer`` (an OAuth client id) may see it; unchanged
    when ``viewer`` is None (authentication off: there are no owners)."""
    if viewer is None:
        return body
    kind = body.get("resourceType")
    if kind == "Subscription":
        return _for(body, viewer)  # type: ignore[return-value]
    if kind != "Bundle" or not isinstance(body.get("entry"), list):
        return body
    entries = body["entry"]
    if not any(isinstance(e, dict) and isinstance(e.get("resource"), dict)
               and e["resource"].get("resourceType") == "Subscription" for e in entries):
        return body
    changed = [{**e, "resource": _for(e["resource"], viewer)} if isinstance(e, dict) and "resource" in e else e
               for e in entries]
    return {**body, "entry": changed}
