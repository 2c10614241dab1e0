"""The rest-hook request of a notification, and sending it (R4 subscription.html, channel type rest-hook).

A criteria-based (R4) Subscription's notification without ``channel.payload`` is a POST to the endpoint
with no body; with ``application/fhir+json`` it is a PUT of the resource to ``[endpoint]/[type]/[id]``.
``channel.header`` lines go as HTTP headers, for both kinds of Subscription. When, and how often, a
notification is sent is the courier's (courier.py): the one delivery mechanism of both kinds.
"""

from __future__ import annotations

import http.client
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .. import fhirjson
from ..ids import new_id
from .acceptance import owner_of, parse_header

TIMEOUT_S = 10.0  # per connect and per read, unless the caller says (RELAIS_RESTHOOK_TIMEOUT_S)
AUDIT_INTERACTION = "subscription-notification"
# Headers that say how the request is framed and where it goes: the server's to set, not channel.header's.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-type"})


class DeliveryError(Exception):
    """The endpoint did not take the notification (network error or a status other than 2xx)."""

    def __init__(self, message: str, status: int | None = None, sent: bool = False):
        super().__init__(message)
        self.status = status
        self.sent = sent  # the request (and any resource in it) reached the endpoint


@dataclass(frozen=True)
class Notification:
    """One HTTP request to make; ``body`` None for an empty POST."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def notification_headers(subscription: dict) -> dict[str, str]:
    """The HTTP headers of every notification of ``subscription``: ``channel.header`` less framing ones."""
    headers = {"User-Agent": "Relais FHIR server"}
    for line in (subscription.get("channel") or {}).get("header") or []:
        name, value = parse_header(line)
        if name.lower() not in _FRAMING:
            headers[name] = value
    return headers


def notification(subscription: dict, resource: dict) -> Notification:
    """The request R4 rest-hook prescribes for ``resource`` on ``subscription`` (pure)."""
    channel = subscription.get("channel") or {}
    endpoint = channel["endpoint"]
    headers = notification_headers(subscription)
    payload = channel.get("payload")
    if not payload:
        return Notification("POST", endpoint, headers, None)
    headers["Content-Type"] = payload.split(";")[0].strip() + "; charset=utf-8"
    url = f"{endpoint.rstrip('/')}/{resource['resourceType']}/{resource['id']}"
    return Notification("PUT", url, headers, fhirjson.dumps(resource))


def send(request: Notification, timeout_s: float = TIMEOUT_S) -> int:
    """Make the request; its 2xx status, or DeliveryError. No redirects followed, no proxies."""
    parts = urlsplit(request.url)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    connection = connection_class(parts.hostname or "", parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {**request.headers, "Content-Length": str(len(request.body or b""))}
    try:
        try:
            connection.connect()
        except OSError as exc:
            raise DeliveryError(f"{request.method} {request.url}: cannot connect ({exc})") from None
        try:
            connection.request(request.method, path, body=request.body or b"", headers=headers)
            response = connection.getresponse()
            response.read(65536)
        except (OSError, http.client.HTTPException) as exc:
            raise DeliveryError(f"{request.method} {request.url}: {exc or type(exc).__name__}", sent=True) from None
    finally:
        connection.close()
    if not 200 <= response.status < 300:
        raise DeliveryError(f"{request.method} {request.url}: HTTP {response.status}", response.status, sent=True)
    return response.status


def audit_facts(subscription: dict, resource: dict, version: int, request: Notification, status: int,
                failure: str, server_base: str, recorded: str) -> dict:  # fmt: skip
    """The AuditEvent facts (``build_audit_event`` arguments) of one notification of ``resource`` that reached
    its endpoint (``failure``: why it did not take it, empty when it did)."""
    from .. import compartment

    body = "the resource" if request.body is not None else "no body"
    message = f"rest-hook notification for Subscription/{subscription['id']} ({body}): {request.method} {request.url}"
    if failure:
        message += f" failed: {failure}"
    return dict(
        interaction=AUDIT_INTERACTION,
        status=status,
        recorded=recorded,
        server_base=server_base,
        client_id=owner_of(subscription),
        resource_type=resource["resourceType"],
        resource_id=resource["id"],
        version=str(version),
        targets=[("Subscription", subscription["id"], None)],
        query=subscription.get("criteria"),
        patients=sorted(compartment.patient_ids(resource["resourceType"], resource)),
        message=message,
        event_id=new_id(),
    )
