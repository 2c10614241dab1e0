"""The write path's hook for Subscriptions: accept them, owned by the client of the request writing them.

Called by ``write`` for every resource it is about to store (REST, Bundle entries, patches, feeds),
so no way in skips the checks. The owner is taken from the request's authenticated caller, never
from the body; writes outside a request (a feed) store no owner, which with authentication on
delivers nothing. The server's own writes (marking a Subscription ``error``) keep the owner stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from ..errors import FHIRError
from .acceptance import accept, criteria_query

_server_write: ContextVar[bool] = ContextVar("relais_subscription_server_write", default=False)


@contextmanager
def server_write() -> Iterator[None]:
    """Writes made inside are the server's own: Subscriptions are stored as given (owner kept)."""
    token = _server_write.set(True)
    try:
        yield
    finally:
        _server_write.reset(token)


def accepted(resource: dict) -> dict:
    """``resource`` as it is to be stored: a Subscription checked and owned, anything else unchanged.

    Raises FHIRError 422 (channel, criteria) or 403 (the client may not search the criteria's type).
    """
    if resource.get("resourceType") != "Subscription" or _server_write.get():
        return resource
    import flask

    import auth

    in_request = flask.has_request_context()
    caller = flask.g.get("caller") if in_request else None
    allowed = flask.current_app.config["RELAIS"].resthook_allow if in_request else ()
    stored = accept(resource, caller.client_id if caller is not None else None, allowed)
    if in_request:
        # A Subscription is a standing search: its client needs search on the criteria's type,
        # decided (and audited) where every other access is.
        query = criteria_query(stored["criteria"])
        try:
            auth.decide(caller, "search", query.resource_type)
        except auth.AccessDenied as exc:
            raise FHIRError(exc.status, f"Subscription.criteria: {exc.message}", code=exc.code,
                            expression=["Subscription.criteria"]) from None
    return stored
