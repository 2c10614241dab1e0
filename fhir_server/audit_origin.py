"""Who recorded an AuditEvent: the server, or a client that sent one (IHE BALP lets audit sources do so).

Every AuditEvent stored carries its origin in ``meta.tag`` (system ``ORIGIN_SYSTEM``): ``server`` on
the events the server records (``auth.audit.build_audit_event``), ``client`` on every other. The write
path calls ``stamped`` on each resource it stores, whatever way it came in, so a client's AuditEvent
gets the client tag and the client as its ``source.observer``, whatever its body said (with
authentication off there is no client to name: the tag alone marks it). A client's
AuditEvent that claims the server's tag is refused (403) rather than silently changed: a forging
attempt should fail loudly. Regulators search either set alone with ``_tag`` (or ``_tag:not``).
"""

from __future__ import annotations

from typing import Any

from .actor import Actor
from .errors import FHIRError

ORIGIN_SYSTEM = "urn:relais:audit-origin"
SERVER_TAG = {"system": ORIGIN_SYSTEM, "code": "server", "display": "recorded by the Relais server"}
CLIENT_TAG = {"system": ORIGIN_SYSTEM, "code": "client", "display": "sent by a client"}
CLIENT_ID_SYSTEM = "urn:relais:oauth-client"  # the system AuditEvents name OAuth clients with


def observer(actor: Actor) -> dict[str, Any]:
    """``source.observer`` of an AuditEvent ``actor`` sent: the authenticated client, never the body's claim."""
    who: dict[str, Any] = {"identifier": {"system": CLIENT_ID_SYSTEM, "value": actor.client_id}}
    if actor.name:
        who["display"] = actor.name
    return who


def stamped(resource: dict, actor: Actor | None) -> dict:
    """``resource`` as it is to be stored: a non-server actor's AuditEvent tagged ``client`` and observed by it.

    Anything else, and the server's own AuditEvents, come back unchanged. Raises FHIRError 403 when a
    client's AuditEvent carries the server's tag.
    """
    if resource.get("resourceType") != "AuditEvent" or (actor is not None and actor.is_server):
        return resource
    meta = dict(resource.get("meta") or {})
    tags = list(meta.get("tag") or ())
    claimed = [t for t in tags if isinstance(t, dict) and t.get("system") == ORIGIN_SYSTEM]
    if any(t.get("code") != CLIENT_TAG["code"] for t in claimed):
        raise FHIRError(403, f"meta.tag {ORIGIN_SYSTEM}: only the server marks the AuditEvents it records "
                        "(a client's AuditEvent is tagged 'client')", code="forbidden",
                        expression=["AuditEvent.meta.tag"])
    tags = [t for t in tags if not (isinstance(t, dict) and t.get("system") == ORIGIN_SYSTEM)]
    meta["tag"] = [*tags, dict(CLIENT_TAG)]
    if actor is None:  # authentication off: no client to name, the tag alone tells it from the server's
        return {**resource, "meta": meta}
    return {**resource, "meta": meta, "source": {**(resource.get("source") or {}), "observer": observer(actor)}}


__all__ = ["CLIENT_TAG", "ORIGIN_SYSTEM", "SERVER_TAG", "observer", "stamped"]
