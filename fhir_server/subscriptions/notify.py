"""Criteria-based (R4) Subscriptions' part of the ``resource`` events: match each created or updated
resource against the active Subscriptions; each match its owner's client may read is one delivery,
filed in its endpoint's lane (handlers.py, courier.py). With authentication on, the chains and ``_has``
of a Subscription's criteria look only at what its owner's client may read: a notification must not tell
what a chain found in data the owner cannot see.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from ..search.extract import index_values
from ..search.matcher import Find, Resolve, matches
from ..search.query import SearchQuery
from ..searching.chains import readable_chains
from . import index as subscription_index
from .index import Active
from .settings import Settings

log = logging.getLogger("relais.subscriptions")

RESOURCE_KIND = "resource"  # the events the write path appends, one per write
DELIVERY_KIND = "rest-hook"  # outbox events of one criteria-based delivery: an operator's dead letters put back
_WRITES = ("POST", "PUT", "PATCH")  # R4 notifies creates and updates; a deletion has no resource to match


Lookups = Callable[[Active], tuple[Resolve, Find]]


def matching(subscriptions: tuple[Active, ...], resource: dict, resolve: Resolve | None = None,
             find: Find | None = None, *, lookups: Lookups | None = None) -> list[Active]:  # fmt: skip
    """The Subscriptions whose criteria ``resource`` meets (one that fails to evaluate is skipped, logged).

    ``lookups(subscription)``, when given, are the resolve and find callbacks for that Subscription's
    chains and ``_has`` (in place of ``resolve`` and ``find``).
    """
    if not subscriptions:
        return []
    rows = index_values(resource)  # extracted once for all of them
    found = []
    for subscription in subscriptions:
        try:
            if lookups is not None:
                resolve, find = lookups(subscription)
            if matches(subscription.query, resource, resolve, find=find, rows=rows):
                found.append(subscription)
        except Exception:  # one Subscription's criteria must not stop the others' deliveries
            log.exception("Subscription/%s: criteria %r failed on %s/%s", subscription.id, subscription.criteria,
                          resource.get("resourceType"), resource.get("id"))
    return found


def may_receive(auth_on: bool, owner: str | None, resource: dict, can_read: Callable[[str, dict], bool]) -> bool:
    """Whether a Subscription owned by ``owner`` may be sent ``resource``.

    With authentication on, only what the owner's client may read; a Subscription without an owner
    (written with authentication off, or by a feed) then receives nothing.
    """
    if not auth_on:
        return True
    return owner is not None and can_read(owner, resource)


def delivery(subscription_id: str, resource_type: str, id: str, version: int) -> dict:
    """The outbox payload of one delivery (a dead letter's): what to send is read again when it is sent."""
    return {"kind": DELIVERY_KIND, "subscription": subscription_id, "type": resource_type, "id": id,
            "version": version}


def owner_reader(store: Any) -> Callable[[str, dict], bool]:
    """``can_read(owner, resource)`` for registered clients, each looked up once per use of the reader."""
    import auth

    callers: dict[str, Any] = {}

    def can_read(owner: str, resource: dict) -> bool:
        if owner not in callers:
            callers[owner] = auth.caller_for_client(store, owner)
        return auth.can_read(callers[owner], resource)

    return can_read


def store_lookups(store: Any, can_read: Callable[[dict], bool] | None = None,
                  sees_all: Callable[[str], bool] | None = None) -> tuple[Resolve, Find]:  # fmt: skip
    """Chains and ``_has`` in criteria follow references through the store, as a search does.

    With ``can_read`` (and ``sees_all``), only through what a reader may read: the rest is as if absent.
    """

    def readable(resource: dict | None) -> bool:
        return resource is not None and (can_read is None or can_read(resource))

    def resolve(resource_type: str, id: str) -> dict | None:
        stored = store.read(resource_type, id)
        return stored.resource if stored is not None and readable(stored.resource) else None

    def find(query: SearchQuery) -> list[dict]:
        if can_read is not None:
            query = readable_chains(store, query, can_read, sees_all or (lambda resource_type: False))
        ids = store.search(query).ids
        return [v.resource for v in store.read_many(query.resource_type, ids) if readable(v.resource)]

    return resolve, find


def owner_lookups(store: Any, auth_on: bool) -> Lookups:
    """``lookups(subscription)`` through what its owner's client may read (authentication off: everything).

    A Subscription without an owner receives nothing with authentication on (``may_receive``): its
    lookups see nothing either. Each owner's client is looked up once per use.
    """
    import auth

    everything = store_lookups(store)
    nothing = store_lookups(store, lambda resource: False)
    by_owner: dict[str, tuple[Resolve, Find]] = {}

    def lookups(subscription: Active) -> tuple[Resolve, Find]:
        owner = subscription.owner
        if not auth_on:
            return everything
        if owner is None:
            return nothing
        if owner not in by_owner:
            caller = auth.caller_for_client(store, owner)
            by_owner[owner] = store_lookups(store, lambda resource: auth.can_read(caller, resource),
                                            lambda resource_type: auth.sees_all(caller, resource_type))
        return by_owner[owner]

    return lookups


def deliveries(settings: Settings, store: Any, payloads: list[dict]) -> list[tuple[Active, Any]]:
    """The deliveries ``resource`` events call for: (Subscription, stored version) pairs, in event order."""
    writes = [p for p in payloads if p.get("method") in _WRITES]
    if not writes:
        return []
    index = subscription_index.current(store)
    now = time.time()
    wanted = [(p, subs) for p in writes if (subs := subscription_index.candidates(index, p["type"], now))]
    if not wanted:
        return []
    lookups = owner_lookups(store, settings.auth)
    can_read = owner_reader(store)
    found = []
    for payload, subscriptions in wanted:
        stored = store.read(payload["type"], payload["id"], payload["version"])
        if stored is None or stored.resource is None:
            continue
        for subscription in matching(subscriptions, stored.resource, lookups=lookups):
            if may_receive(settings.auth, subscription.owner, stored.resource, can_read):
                found.append((subscription, stored))
    return found
