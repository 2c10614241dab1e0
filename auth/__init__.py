"""Access control: who is calling (authenticate) and whether they may (decide).

The REST layer, bundle entries, feeds and subscription deliveries all go through
``authenticate`` once per request and ``decide`` once per interaction.
"""

from .access import AccessDenied, Caller, authenticate, can_read, decide, init_app

__all__ = ["AccessDenied", "Caller", "authenticate", "can_read", "decide", "init_app"]
