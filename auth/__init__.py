"""Access control: who is calling (authenticate) and whether they may (decide).

The REST layer, bundle entries, feeds and subscription deliveries all go through
``authenticate`` once per request and ``decide`` once per interaction.
"""

from .access import (
    AccessDenied,
    Caller,
    authenticate,
    caller_for_client,
    can_read,
    capability_security,
    decide,
    init_app,
    sees_all,
)
from .audit import build_audit_event
from .blueprint import startup_help

__all__ = [
    "AccessDenied",
    "Caller",
    "authenticate",
    "build_audit_event",
    "can_read",
    "caller_for_client",
    "capability_security",
    "decide",
    "init_app",
    "sees_all",
    "startup_help",
]
