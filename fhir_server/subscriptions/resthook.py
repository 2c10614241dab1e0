"""Outbox handler for ``rest-hook`` deliveries (R4 subscription.html, channel type rest-hook).

Without ``channel.payload`` a notification is a POST to the endpoint with no body; with
``application/fhir+json`` it is a PUT of the resource to ``[endpoint]/[type]/[id]``. ``channel.header``
lines go as HTTP headers. What is sent is decided again when it is sent (the Subscription may have
been turned off, its owner's scopes narrowed). A failed delivery is retried by the dispatcher with
its backoff; one that becomes a dead letter puts its Subscription in status ``error``.
"""

from __future__ import annotations

import http.client
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .. import fhirjson
from ..actor import SERVER
from ..ids import new_id
from ..outbox import PartialFailure
from .acceptance import delivers, end_of, endpoint_allowed, owner_of, parse_header
from .notify import DELIVERY_KIND, may_receive, owner_reader
from .settings import Settings

log = logging.getLogger("relais.subscriptions")

OUTBOX_KIND = DELIVERY_KIND
TIMEOUT_S = 5.0  # per connect and per read: a dead endpoint costs one timeout per batch, not per event
BATCH_BUDGET_S = 30.0  # half the dispatcher's lease: later deliveries of a slow batch wait for the next claim
MAX_PARALLEL = 8  # endpoints served at once; one endpoint's deliveries go one after another
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


@dataclass
class _Planned:
    position: int
    payload: dict
    subscription: dict
    resource: dict
    request: Notification
    status: int | None = None
    error: DeliveryError | None = None


def _plan(store: Any, payloads: list[dict], auth_on: bool, allowed: tuple[str, ...] = ()) -> list[_Planned]:
    """The deliveries still due: Subscription active (or in error, for those queued before), not past
    its end, resource readable by its owner now. Others are dropped, logged."""
    can_read = owner_reader(store)
    subscriptions: dict[str, dict | None] = {}
    planned = []
    now = time.time()
    for position, payload in enumerate(payloads):
        sid = payload["subscription"]
        if sid not in subscriptions:
            stored = store.read("Subscription", sid)
            subscriptions[sid] = stored.resource if stored is not None and not stored.deleted else None
        subscription = subscriptions[sid]
        target = f"{payload['type']}/{payload['id']}/_history/{payload['version']}"
        if subscription is None or not _still_due(subscription, now):
            log.info("delivery of %s for Subscription/%s dropped: no longer active", target, sid)
            continue
        version = store.read(payload["type"], payload["id"], payload["version"])
        if version is None or version.resource is None:
            log.info("delivery of %s for Subscription/%s dropped: version not found", target, sid)
            continue
        if not may_receive(auth_on, owner_of(subscription), version.resource, can_read):
            log.info("delivery of %s for Subscription/%s dropped: its client may not read it", target, sid)
            continue
        if not endpoint_allowed((subscription.get("channel") or {}).get("endpoint") or "", allowed):
            # accepted before RELAIS_RESTHOOK_ALLOW left its endpoint out
            log.warning("delivery of %s for Subscription/%s dropped: endpoint outside RELAIS_RESTHOOK_ALLOW",
                        target, sid)
            continue
        request = notification(subscription, version.resource)
        planned.append(_Planned(position, payload, subscription, version.resource, request))
    return planned


def _still_due(subscription: dict, now: float) -> bool:
    if subscription.get("status") == "error":  # deliveries queued before the error still go (or dead-letter)
        end = end_of(subscription)
        return end is None or end > now
    return delivers(subscription, now)


def _send_all(planned: list[_Planned], budget_s: float) -> None:
    """Send each endpoint's deliveries in order, endpoints in parallel; after a failure, or past the
    budget, an endpoint's remaining deliveries fail without being tried (their retry comes later)."""
    deadline = time.monotonic() + budget_s
    by_endpoint: dict[str, list[_Planned]] = {}
    for item in planned:
        by_endpoint.setdefault(item.subscription["channel"]["endpoint"], []).append(item)

    def run(items: list[_Planned]) -> None:
        failed: DeliveryError | None = None
        for item in items:
            if failed is not None:
                item.error = DeliveryError(f"not tried: the endpoint failed just before ({failed})")
            elif time.monotonic() > deadline:
                item.error = DeliveryError("not tried: the batch ran out of time")
            else:
                try:
                    item.status = send(item.request)
                except DeliveryError as exc:
                    item.error = failed = exc

    if len(by_endpoint) == 1:
        run(next(iter(by_endpoint.values())))
        return
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(by_endpoint))) as pool:
        list(pool.map(run, by_endpoint.values()))


def audit_facts(item: _Planned, server_base: str, recorded: str) -> dict:
    """The AuditEvent facts (``build_audit_event`` arguments) of one delivery that reached its endpoint."""
    from .. import compartment

    payload, subscription = item.payload, item.subscription
    status = item.status if item.status is not None else (item.error.status if item.error else None) or 502
    body = "the resource" if item.request.body is not None else "no body"
    message = (f"rest-hook notification for Subscription/{subscription['id']} ({body}): "
               f"{item.request.method} {item.request.url}")
    if item.error is not None:
        message += f" failed: {item.error}"
    return dict(
        interaction=AUDIT_INTERACTION,
        status=status,
        recorded=recorded,
        server_base=server_base,
        client_id=owner_of(subscription),
        resource_type=payload["type"],
        resource_id=payload["id"],
        version=str(payload["version"]),
        targets=[("Subscription", subscription["id"], None)],
        query=subscription.get("criteria"),
        patients=sorted(compartment.patient_ids(payload["type"], item.resource)),
        message=message,
        event_id=new_id(),
    )


def deliver(settings: Settings, store: Any, payloads: list[dict]) -> None:
    """Handler of ``rest-hook`` events (bind ``settings`` to register it): send them; PartialFailure
    names those to retry."""
    from auth.audit import append_events, now_instant

    planned = _plan(store, payloads, settings.auth, settings.allowed_endpoints)
    _send_all(planned, BATCH_BUDGET_S)
    recorded = now_instant()
    reached = [item for item in planned if item.status is not None or (item.error and item.error.sent)]
    append_events(store, [audit_facts(item, settings.server_base, recorded) for item in reached])
    failures = {item.position: item.error for item in planned if item.error is not None}
    if failures:
        raise PartialFailure(failures)  # type: ignore[arg-type]


def error_subscription(subscription: dict, error: str) -> dict | None:
    """``subscription`` in status ``error`` with ``error`` (None when it is off: left as its client set it)."""
    if subscription.get("status") not in ("active", "error"):
        return None
    return {**subscription, "status": "error", "error": error[:1000]}


def mark_error(store: Any, payload: dict, error: str) -> None:
    """Dead-letter handler: the Subscription of a delivery that kept failing goes to status ``error``."""
    from .. import write

    sid = payload.get("subscription")
    target = f"{payload.get('type')}/{payload.get('id')}/_history/{payload.get('version')}"
    for _ in range(5):  # the owner may be updating it at the same moment
        stored = store.read("Subscription", sid)
        if stored is None or stored.deleted or stored.resource is None:
            return
        changed = error_subscription(stored.resource, f"delivery of {target} failed repeatedly: {error}")
        if changed is None:
            return
        try:
            # the server's own write: the Subscription keeps its owner
            write.write(store, [write.Change(write.UPDATE, "Subscription", id=sid, resource=changed,
                                             if_match=stored.version)], SERVER)
            log.error("Subscription/%s set to status error: %s", sid, changed["error"])
            return
        except Exception as exc:  # noqa: BLE001  (a 412 from If-Match: read again)
            if getattr(exc, "status", None) != 412:
                raise
