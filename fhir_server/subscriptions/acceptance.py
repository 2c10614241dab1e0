"""Accepting a Subscription (R4, channel-based): what the server checks and sets before storing one.

Pure functions: ``accept`` takes a validated Subscription and the client that writes it and returns
the version to store, or raises FHIRError (422) naming what cannot be honoured.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

from ..errors import FHIRError
from ..resources import is_supported
from ..search.errors import SearchError
from ..search.parser import parse_criteria
from ..search.query import SearchQuery
from . import backport
from .topics import is_topic_criteria

# The client a Subscription's deliveries are filtered for, set by the server on every write.
OWNER_URL = "urn:relais:subscription-owner"
CLIENT_ID_SYSTEM = "urn:relais:oauth-client"  # the system AuditEvents name OAuth clients with
CHANNEL_TYPES = ("rest-hook",)
# channel.payload values honoured (anything else, XML included, is refused rather than ignored)
JSON_PAYLOADS = ("application/fhir+json", "application/json")
# Each delivery of an AuditEvent would record an AuditEvent: a subscription to them would never stop.
NOT_SUBSCRIBABLE = {"AuditEvent": "every delivery records an AuditEvent, so it would notify itself forever"}
_HEADER = re.compile(r"^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*([^\r\n]*)$")


def _unprocessable(message: str, path: str, code: str = "invalid") -> FHIRError:
    return FHIRError(422, message, code=code, expression=[f"Subscription.{path}"])


def criteria_query(criteria: object) -> SearchQuery:
    """The search a ``criteria`` string stands for; FHIRError 422 naming the problem otherwise."""
    if not isinstance(criteria, str) or not criteria.strip():
        raise _unprocessable("Subscription.criteria is required: Type?name=value", "criteria", "required")
    resource_type = criteria.strip().lstrip("/").partition("?")[0]
    if not is_supported(resource_type):
        raise _unprocessable(f"criteria {criteria!r}: resource type {resource_type!r} is not supported here",
                             "criteria", "not-supported")
    if resource_type in NOT_SUBSCRIBABLE:
        raise _unprocessable(f"criteria {criteria!r}: no Subscription on {resource_type}: "
                             f"{NOT_SUBSCRIBABLE[resource_type]}", "criteria", "not-supported")
    try:
        return parse_criteria(criteria, strict=True)
    except SearchError as exc:
        raise _unprocessable(f"criteria {criteria!r}: {exc.message}", "criteria") from None


def subscribed_type(resource: dict) -> str:
    """The resource type a Subscription watches: its topic's (backport), else its criteria's; FHIRError 422
    naming what is wrong with either."""
    if is_topic_criteria(resource.get("criteria")):
        try:
            return backport.read(resource).topic.resource_type
        except backport.Invalid as exc:
            code = "not-supported" if exc.path == "criteria" else "invalid"
            raise _unprocessable(exc.message, exc.path, code) from None
    return criteria_query(resource.get("criteria")).resource_type


def parse_header(line: str) -> tuple[str, str]:
    """``Name: value`` of ``channel.header`` as a pair; ValueError when it is not one HTTP header."""
    match = _HEADER.match(line)
    if not match:
        raise ValueError(f"channel.header {line!r} is not one 'Name: value' HTTP header")
    return match.group(1), match.group(2).strip()


def endpoint_allowed(endpoint: str, allowed: tuple[str, ...]) -> bool:
    """Whether ``endpoint`` starts with one of the ``allowed`` prefixes (none configured: any)."""
    return not allowed or any(endpoint.startswith(prefix) for prefix in allowed)


def _check_channel(channel: dict, allowed: tuple[str, ...]) -> None:
    kind = channel.get("type")
    if kind not in CHANNEL_TYPES:
        raise _unprocessable(f"channel.type {kind!r} is not supported: this server delivers rest-hook only",
                             "channel.type", "not-supported")
    endpoint = channel.get("endpoint")
    parts = urlsplit(endpoint) if isinstance(endpoint, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise _unprocessable(f"channel.endpoint {endpoint!r}: a rest-hook needs an http or https URL",
                             "channel.endpoint", "required" if endpoint is None else "invalid")
    if not endpoint_allowed(endpoint, allowed):
        raise _unprocessable(f"channel.endpoint {endpoint!r} is not under a prefix of RELAIS_RESTHOOK_ALLOW",
                             "channel.endpoint", "business-rule")
    payload = channel.get("payload")
    if payload is not None and payload.split(";")[0].strip() not in JSON_PAYLOADS:
        raise _unprocessable(f"channel.payload {payload!r} is not supported: use application/fhir+json, "
                             "or omit it for notifications without a body", "channel.payload", "not-supported")
    for i, line in enumerate(channel.get("header") or []):
        try:
            parse_header(line)
        except ValueError as exc:
            raise _unprocessable(str(exc), f"channel.header[{i}]") from None


def accept(resource: dict, owner: str | None, allowed_endpoints: tuple[str, ...] = ()) -> dict:
    """The Subscription to store: checked, ``requested`` made ``active``, its owner set to ``owner``.

    ``owner`` is the OAuth client writing it (None when authentication is off); whatever owner the
    body claims is replaced, so no client can have deliveries filtered for another one.
    ``allowed_endpoints``: URL prefixes the endpoint must start with (RELAIS_RESTHOOK_ALLOW; empty: any).
    """
    _check_channel(resource.get("channel") or {}, allowed_endpoints)
    subscribed_type(resource)
    accepted = dict(resource)
    if accepted.get("status") == "requested":
        accepted["status"] = "active"  # as HAPI FHIR does: the checks above are the acceptance
    extensions = [e for e in accepted.get("extension") or [] if e.get("url") != OWNER_URL]
    if owner is not None:
        extensions.append({"url": OWNER_URL, "valueIdentifier": {"system": CLIENT_ID_SYSTEM, "value": owner}})
    if extensions:
        accepted["extension"] = extensions
    else:
        accepted.pop("extension", None)
    return accepted


def owner_of(resource: dict) -> str | None:
    """The client a stored Subscription delivers for (None: written with authentication off)."""
    for extension in resource.get("extension") or []:
        if extension.get("url") == OWNER_URL:
            value = (extension.get("valueIdentifier") or {}).get("value")
            return value if isinstance(value, str) else None
    return None


def endpoint_of(resource: dict) -> str:
    """A Subscription's ``channel.endpoint`` ("" when it has none)."""
    return (resource.get("channel") or {}).get("endpoint") or ""


def end_of(resource: dict) -> float | None:
    """``end`` as epoch seconds (None when absent or unreadable)."""
    end = resource.get("end")
    if not isinstance(end, str):
        return None
    try:
        moment = datetime.fromisoformat(end.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def delivers(resource: dict, now: float) -> bool:
    """Whether a stored Subscription is due deliveries at ``now``: active, and ``end`` not passed."""
    end = end_of(resource)
    return resource.get("status") == "active" and (end is None or end > now)
