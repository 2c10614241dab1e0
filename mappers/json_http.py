"""``POST /feeds/<feed>`` and ``GET /feeds/<feed>/schema`` for the JSON partner feeds (telemonitoring,
teleconsultation, report): authenticate, hand the body to the shared ingest with the feed's pure mapper, answer
with the status and JSON body the mapper chose (a resend gets the same)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

import auth
from fhir_server.errors import FHIRError

from . import feed, report, senders, teleconsultation, telemonitoring
from .json_feed import Context
from .partner import FeedMapper

FEEDS: dict[str, tuple[Callable[[Context], FeedMapper], dict]] = {
    "telemonitoring": (telemonitoring.feed_mapper, telemonitoring.SCHEMA),
    "teleconsultation": (teleconsultation.feed_mapper, teleconsultation.SCHEMA),
    "report": (report.feed_mapper, report.SCHEMA),
}
ANONYMOUS = "anonymous"  # the sender of every payload when authentication is off

blueprint = Blueprint("relais_feeds", __name__)


def _feed(name: str) -> tuple[Callable[[Context], FeedMapper], dict]:
    if name not in FEEDS:
        raise FHIRError(404, f"no feed {name!r} (one of {', '.join(FEEDS)})", code="not-found")
    return FEEDS[name]


@blueprint.get("/feeds/<name>/schema")
def schema(name: str) -> Response:
    """The feed's JSON Schema: public, like the CapabilityStatement."""
    return Response(json.dumps(_feed(name)[1], ensure_ascii=False, indent=1), 200,
                    content_type="application/schema+json; charset=utf-8")


@blueprint.post("/feeds/<name>")
def receive(name: str) -> Response:
    """Authenticate (401 as an OperationOutcome), ingest, answer with the feed's status and JSON body."""
    build, _ = _feed(name)
    store = current_app.extensions["relais_store"]
    base_url = current_app.config["RELAIS"].base_url
    source = feed.Source("http", request.remote_addr)
    try:
        caller = auth.authenticate(request)
    except auth.AccessDenied as exc:
        mapper = build(Context(ANONYMOUS, datetime.now(UTC)))
        feed.audit_refused(store, mapper, source, base_url, exc.status, f"{name} over http refused: {exc.message}")
        raise
    client_id = caller.client_id if caller else None
    context = Context(client_id or ANONYMOUS, datetime.now(UTC),
                      senders.patient_systems(store, client_id) if client_id else None)
    source = feed.Source("http", request.remote_addr, client_id)
    try:
        raw = request.get_data()
    except RequestEntityTooLarge:
        return _too_large(store, build(context), source, base_url)
    answer = feed.ingest(store, build(context), raw, caller, source, base_url).answer
    return _response(answer)


def _too_large(store, mapper: FeedMapper, source: feed.Source, base_url: str) -> Response:
    """413 for a body over RELAIS_MAX_BODY_BYTES, its start kept with the answer (nothing received is lost)."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH") or 0
    start = request.environ["wsgi.input"].read(limit) if limit else b""
    problem = feed.Problem(feed.NOT_STORED, f"the payload is larger than RELAIS_MAX_BODY_BYTES ({limit} bytes)",
                           status=413)
    return _response(feed.refuse_unread(store, mapper, start, source, base_url, problem, 413).answer)


def _response(answer: dict) -> Response:
    body = answer["body"]
    kind = "application/fhir+json" if body.get("resourceType") == "OperationOutcome" else "application/json"
    response = Response(json.dumps(body, ensure_ascii=False), answer["status"], content_type=f"{kind}; charset=utf-8")
    if answer["status"] == 503:
        response.headers["Retry-After"] = "5"
    return response


def install(app) -> None:
    """Mount the JSON feeds on ``app``."""
    app.register_blueprint(blueprint)
