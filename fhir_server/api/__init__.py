"""The FHIR REST API: blueprints under /fhir and the errors they answer with."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

import auth

from ..errors import FHIRError
from ..subscriptions.hook import Acceptance
from .binary import raw_exchange
from .bundle import bundle
from .capability import capability
from .cors import is_preflight
from .everything import everything
from .export import export
from .http import error_response, negotiate, outcome_response
from .openapi import openapi
from .operations import operations
from .rest import ACCEPTANCE, may_search, rest
from .search import CONVERTERS, search
from .worklist import worklist

log = logging.getLogger("relais.api")

_ISSUE_CODE = {404: "not-found", 405: "not-supported", 413: "too-costly", 400: "invalid"}


def register(app: Flask) -> None:
    """Mount the FHIR API at /fhir and make every error an OperationOutcome."""
    app.url_map.converters.update(CONVERTERS)  # before the rules that use them are added
    for blueprint in (capability, openapi, bundle, operations, export, everything, worklist, search, rest):
        app.register_blueprint(blueprint, url_prefix="/fhir")
    app.extensions[ACCEPTANCE] = Acceptance(tuple(app.config["RELAIS"].resthook_allow), may_search)

    @app.before_request
    def _before() -> None:
        if not request.path.startswith("/fhir"):
            return
        if is_preflight(request):
            # The browser asks before a cross-origin call, without the token: nothing is read or written.
            g.relais_unaudited = True
            return
        if not raw_exchange(request):  # Binary content is not FHIR JSON
            negotiate(request)
        g.caller = auth.authenticate(request)

    @app.errorhandler(FHIRError)
    def _fhir_error(exc: FHIRError) -> Response:
        return error_response(exc)

    @app.errorhandler(auth.AccessDenied)
    def _denied(exc: auth.AccessDenied) -> Response:
        response = outcome_response(exc.status, "error", exc.code, exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="relais"'
        if exc.status == 405:
            # RFC 9110: a 405 names what the target takes. A type that refuses a write to every client
            # (AuditEvent) is still read, searched and created.
            instance = "id" in (request.view_args or {})
            response.headers["Allow"] = "GET, HEAD" if instance else "GET, HEAD, POST"
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        text = {404: "No such endpoint", 405: f"{request.method} is not allowed on {request.path}",
                413: "The request body is larger than RELAIS_MAX_BODY_BYTES"}.get(status, exc.description or exc.name)
        response = outcome_response(status, "error", _ISSUE_CODE.get(status, "processing"), text)
        allowed = dict(exc.get_headers()).get("Allow")
        if allowed:
            response.headers["Allow"] = allowed
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The trace goes to the log, never to the client.
        log.exception("unexpected error on %s %s", request.method, request.path)
        return outcome_response(500, "fatal", "exception", "Internal server error")
