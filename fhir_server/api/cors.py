"""CORS for browser apps (SMART apps, dashboards) on the FHIR API: off unless RELAIS_CORS_ORIGINS names origins.

flask-cors does the protocol (origin matching, ``Vary: Origin``, preflight answers); this module says
what Relais allows. A preflight carries no token, so the API's authentication lets it through
(``is_preflight``); the request that follows is authenticated as usual.
"""

from __future__ import annotations

from flask import Flask, Request, current_app
from flask_cors import CORS

EXTENSION = "relais_cors"

# What a FHIR client sends: the token, content negotiation, conditional and versioned interactions.
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Accept", "If-Match", "If-None-Match", "If-None-Exist",
                   "If-Modified-Since", "Prefer", "X-Security-Context"]
# What a browser app must read from answers: where a create went, versions, $export's progress.
EXPOSED_HEADERS = ["Location", "ETag", "Content-Location", "X-Progress", "Last-Modified"]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
MAX_AGE_S = 600  # browsers cache a preflight this long: one OPTIONS per URL and method every 10 minutes


def install(app: Flask, origins: tuple[str, ...]) -> None:
    """Allow ``origins`` (``*``: any) to call /fhir/* from a browser; nothing when ``origins`` is empty."""
    if not origins:
        return
    allowed = "*" if "*" in origins else list(origins)
    # No credentials mode: Relais reads bearer tokens, never cookies.
    CORS(app, resources={r"/fhir/*": {"origins": allowed}}, allow_headers=ALLOWED_HEADERS,
         expose_headers=EXPOSED_HEADERS, methods=METHODS, max_age=MAX_AGE_S, supports_credentials=False)
    app.extensions[EXTENSION] = True


def is_preflight(req: Request) -> bool:
    """Whether ``req`` is a CORS preflight that this app answers (CORS on)."""
    return (req.method == "OPTIONS" and "Access-Control-Request-Method" in req.headers
            and bool(current_app.extensions.get(EXTENSION)))
