"""The write path's hook for Subscriptions: accept them, owned by the actor writing them.

Called by ``write`` for every resource it is about to store (REST, Bundle entries, patches, feeds),
so no way in skips the checks. The owner is the actor of the write, never the body; with
authentication off (no actor) there is no owner. The server's own writes (marking a Subscription
``error``) keep the owner stored. What acceptance needs of the app comes in an ``Acceptance``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..actor import Actor
from ..errors import FHIRError
from .acceptance import accept, subscribed_type

# why ``actor`` may not search ``resource_type`` (None: it may)
SearchRefusal = Callable[[Actor | None, str], str | None]


@dataclass(frozen=True)
class Acceptance:
    """What accepting a Subscription needs of the app, built once by it and handed to ``write``.

    ``allowed_endpoints``: RELAIS_RESTHOOK_ALLOW (empty: any http(s) URL). ``may_search``: the access
    decision on the criteria's type, since a Subscription is a standing search.
    """

    allowed_endpoints: tuple[str, ...]
    may_search: SearchRefusal


def accepted(resource: dict, actor: Actor | None, acceptance: Acceptance | None) -> dict:
    """``resource`` as it is to be stored: a Subscription checked and owned, anything else unchanged.

    Raises FHIRError 422 (channel, criteria, or a way in that takes no Subscription: no ``acceptance``)
    or 403 (the actor may not search the criteria's type).
    """
    if resource.get("resourceType") != "Subscription" or (actor is not None and actor.is_server):
        return resource
    if acceptance is None:
        raise FHIRError(422, "Subscriptions are not accepted this way: write them through the FHIR API",
                        code="business-rule", expression=["Subscription"])
    stored = accept(resource, actor.client_id if actor is not None else None, acceptance.allowed_endpoints)
    refusal = acceptance.may_search(actor, subscribed_type(stored))
    if refusal is not None:
        raise FHIRError(403, f"Subscription.criteria: {refusal}", code="forbidden",
                        expression=["Subscription.criteria"])
    return stored
