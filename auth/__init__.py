"""Access control: who is acting (authenticate, the actors of clients) and whether they may (refusal).

``refusal`` is the pure decision every way in calls: the REST layer, bundle entries, feeds, jobs and
subscription deliveries; each records what it decided for its AuditEvents.
"""

from .access import (
    UNREAD,
    AccessDenied,
    Caller,
    can_read,
    decide,
    denial,
    needs_replaced,
    never_allowed,
    refusal,
    sees_all,
)
from .actors import caller_for_client, internal_actor
from .audit import audit_write, build_audit_event
from .authentication import authenticate
from .blueprint import init_app, startup_help
from .request_audit import record_decision

__all__ = [
    "UNREAD",
    "AccessDenied",
    "Caller",
    "audit_write",
    "authenticate",
    "build_audit_event",
    "can_read",
    "caller_for_client",
    "decide",
    "denial",
    "init_app",
    "internal_actor",
    "needs_replaced",
    "never_allowed",
    "record_decision",
    "refusal",
    "sees_all",
    "startup_help",
]
