"""``POST /hl7v2``: one ER7 message per request, answered 200 with its ACK (AA, AE or AR) as ER7."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

import auth
from fhir_server.errors import FHIRError

from . import feed

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
    outcome = feed.receive(store, request.get_data(), caller, source, base_url)
    return Response(outcome.answer, 200, content_type=f"{ER7}; charset=utf-8")
