"""``Subscription/[id]/$status`` and ``Subscription/[id]/$events`` (Subscriptions R5 Backport, R4).

``$status`` answers a searchset Bundle with the SubscriptionStatus (a Parameters resource) of the
Subscription; ``$events`` a history Bundle, the status first (type ``query-event``), then the events
numbered ``eventsSinceNumber`` to ``eventsUntilNumber`` (inclusive): what a receiver that saw a gap
in the event numbers fetches. Who may read the Subscription may call both; a focus resource the
caller may not read is named by no entry.
"""

from __future__ import annotations

import uuid
from typing import Any

from flask import Blueprint, Response, g, request

import auth

from ..errors import FHIRError
from ..subscriptions import backport, ledger
from ..subscriptions import bundle as notifications
from .http import base_url, fhir_response, json_body
from .operations import add_capability
from .rest import allow, check_id, config, store

subscription_ops = Blueprint("fhir_subscription_ops", __name__)


def _arguments() -> dict[str, str]:
    """The operation's parameters: from the query string, and from a Parameters body on POST."""
    values = {name: value for name, value in request.args.items()}
    if request.method == "POST" and request.get_data():
        body = json_body(request)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise FHIRError(400, "The body of this operation is a Parameters resource", code="structure")
        for parameter in body.get("parameter") or []:
            if isinstance(parameter, dict) and isinstance(parameter.get("name"), str):
                value = next((v for k, v in parameter.items() if k.startswith("value")), None)
                if value is not None:
                    values[parameter["name"]] = str(value)
    return values


def _topic_subscription(id: str) -> tuple[dict, backport.TopicSubscription]:
    check_id(id)
    stored = store().read("Subscription", id)
    if stored is None or stored.deleted or stored.resource is None:
        raise FHIRError(404 if stored is None else 410, f"Subscription/{id} is not known", code="not-found")
    allow("read", "Subscription", stored.resource)
    try:
        return stored.resource, backport.read(stored.resource)
    except backport.Invalid:
        raise FHIRError(400, f"Subscription/{id} is not topic-based: it has no status or events",
                        code="not-supported") from None


def _number(values: dict[str, str], name: str) -> int | None:
    raw = values.get(name)
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise FHIRError(400, f"{name} is an event number (a whole number), not {raw!r}", code="invalid")
    return int(raw)


@subscription_ops.route("/Subscription/<id>/$status", methods=["GET", "POST"])
def status(id: str) -> Response:
    subscription, settings = _topic_subscription(id)
    since_start = ledger.last_number(store(), id)
    parameters = notifications.status_parameters(base_url(), subscription, settings.topic.url,
                                                 notifications.QUERY_STATUS, since_start, [], settings.content,
                                                 subscription.get("error"))
    return fhir_response({"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "searchset", "total": 1,
                          "entry": [{"fullUrl": f"urn:uuid:{parameters['id']}", "resource": parameters,
                                     "search": {"mode": "match"}}]})


@subscription_ops.route("/Subscription/<id>/$events", methods=["GET", "POST"])
def events(id: str) -> Response:
    subscription, settings = _topic_subscription(id)
    values = _arguments()
    content = values.get("content") or settings.content
    if content not in backport.CONTENTS:
        raise FHIRError(400, f"content is one of {', '.join(backport.CONTENTS)}", code="invalid")
    st = store()
    last = ledger.last_number(st, id)
    since = _number(values, "eventsSinceNumber") or 1
    until = min(_number(values, "eventsUntilNumber") or last, last, since + config().max_count - 1)
    numbered = ledger.events(st, id, list(range(since, until + 1)))
    caller = g.get("caller")
    shown: list[tuple[ledger.Event, dict | None, bool]] = []
    for event in numbered:
        resource, seen_as = ledger.focus(st, event)
        visible = seen_as is not None and auth.can_read(caller, seen_as)
        shown.append((event, resource if visible else None, visible))
    body = notifications.notification(base_url(), subscription, settings.topic.url, notifications.QUERY_EVENT,
                                      last, shown, content, subscription.get("error"))
    return fhir_response(body)


@subscription_ops.record_once
def _capability(state: Any) -> None:
    add_capability(state.app, operations=(("status", backport.STATUS_OPERATION),
                                          ("events", backport.EVENTS_OPERATION)))
