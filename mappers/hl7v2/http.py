"""``POST /hl7v2``: one ER7 message per request, answered 200 with its ACK (AA, AE or AR) as ER7."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

import auth
from fhir_server.errors import FHIRError

from . import feed
from .problems import Problem

ER7 = "x-application/hl7-v2+er7"
ACCEPTED_TYPES = (ER7, "application/hl7-v2", "application/hl7-v2+er7", "text/plain", "application/edi-hl7")

blueprint = Blueprint("relais_hl7v2", __name__)


@blueprint.post("/hl7v2")
def receive() -> Response:
    """Authenticate (401 as an OperationOutcome, like every endpoint), then hand the body to the feed."""
    store = current_app.extensions["relais_store"]
    base_url = current_app.config["RELAIS"].base_url
    source = feed.Source("http", request.remote_addr)
    try:
        caller = auth.authenticate(request)
    except auth.AccessDenied as exc:
        feed.audit_refused(store, source, base_url, exc.status, f"HL7 v2 over http refused: {exc.message}")
        raise
    source = feed.Source("http", request.remote_addr, caller.client_id if caller else None)
    if request.mimetype not in ACCEPTED_TYPES:
        message = f"Content-Type {request.mimetype or '(none)'!r} is not an HL7 v2 message; send {ER7}"
        feed.audit_refused(store, source, base_url, 415, f"HL7 v2 over http refused: {message}")
        raise FHIRError(415, message, code="not-supported")
    try:
        body = request.get_data()
    except RequestEntityTooLarge:
        # an HL7 error is an ACK: the start of the message is kept with the reason, as over MLLP
        limit = current_app.config["RELAIS"].max_body_bytes
        problem = Problem(100, f"the message is larger than RELAIS_MAX_BODY_BYTES ({limit} bytes)", "", "AR")
        # the raw stream, untouched by werkzeug's refusal: read no further than the body goes
        start = request.environ["wsgi.input"].read(min(request.content_length or 0, 64 * 1024))
        outcome = feed.refuse_oversized(store, start, source, base_url, problem)
        # the rest of the body stays unread: the connection cannot carry another request
        return Response(outcome.answer, 200, content_type=f"{ER7}; charset=utf-8", headers={"Connection": "close"})
    outcome = feed.receive(store, body, caller, source, base_url)
    return Response(outcome.answer, 200, content_type=f"{ER7}; charset=utf-8")
