"""Who is calling: a request's bearer token turned into its actor (a Caller), or a 401."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import flask

from .access import AccessDenied, Caller
from .audit import RequestAudit
from .request_audit import request_audit
from .tokens import VERIFIED_CACHE_SIZE, TokenRejected, TokenService

EXTENSION = "relais_authentication"


@dataclass
class Authenticator:
    """The authentication of one app: its token service and one Caller per token seen."""

    tokens: TokenService
    public_paths: tuple[str, ...]  # what anyone may GET without a token
    enabled: bool = True
    _callers: dict[str, Caller] = field(default_factory=dict)

    def authenticate(self, req: Any) -> Caller | None:
        """The caller of ``req``; raises AccessDenied(401). None means authentication is off."""
        audit = request_audit()
        if not self.enabled:
            audit.client_label = "anonymous (RELAIS_AUTH=off)"
            return None
        header = req.headers.get("Authorization", "")
        if not header:
            if req.method in ("GET", "HEAD") and req.path in self.public_paths:
                audit.client_label = "anonymous"
                return Caller(client_id="anonymous")
            _fail(audit, "no access token: send 'Authorization: Bearer <token>' (see .well-known/smart-configuration)")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            _fail(audit, "the Authorization header must be 'Bearer <access token>'")
        token = token.strip()
        try:
            claims = self.tokens.verify(token)
        except TokenRejected as exc:
            _fail(audit, exc.message, exc.code)
        caller = self._callers.get(token)
        if caller is None or caller.claims is not claims:
            # one Caller per token and process, built once for the token's life
            caller = Caller(
                client_id=claims["client_id"],
                scopes=tuple(claims["scope"].split()),
                patient=claims.get("patient") if isinstance(claims.get("patient"), str) else None,
                claims=claims,
            )
            if len(self._callers) >= VERIFIED_CACHE_SIZE:
                self._callers.clear()
            self._callers[token] = caller
        audit.client_id = caller.client_id
        audit.patient = caller.patient
        return caller


def _fail(audit: RequestAudit, message: str, code: str = "login") -> None:
    audit.failure = message
    raise AccessDenied(401, message, code)


def authenticate(request: Any) -> Caller | None:
    """The caller of ``request`` in the current app; raises AccessDenied(401). None: authentication is off
    (or was never installed on the app)."""
    authenticator = flask.current_app.extensions.get(EXTENSION) if flask.has_app_context() else None
    return authenticator.authenticate(request) if authenticator is not None else None
