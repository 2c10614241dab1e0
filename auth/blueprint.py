"""Wiring into Flask: the /auth endpoints, SMART discovery's route, authentication and the audit hook.

``init_app`` keeps one AuthState in ``app.extensions["relais_auth"]``, the Authenticator in
``app.extensions["relais_authentication"]`` (found by ``authenticate``), and registers the request
audit's ``after_request`` hook.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, jsonify

from . import authentication, discovery
from .assertion import PrivateKeyJWT, RemoteJWKS
from .authentication import Authenticator
from .clients import Client, ClientRegistry
from .keys import KeyRing
from .request_audit import RequestAuditor, note_claim, note_client
from .server import build_server
from .tokens import TokenService

EXTENSION = "relais_auth"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

log = logging.getLogger(__name__)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class AuthState:
    """Everything the auth layer keeps for one app."""

    store: Any
    enabled: bool
    base_url: str
    base_path: str
    issuer: str
    keyring: KeyRing
    clients: ClientRegistry
    tokens: TokenService
    server: Any = None

    @property
    def token_url(self) -> str:
        return self.issuer + "/token"

    @property
    def public_paths(self) -> tuple[str, ...]:
        """What anyone may GET without a token: the CapabilityStatement, its OpenAPI form and SMART discovery."""
        return (self.base_path + "/metadata", self.base_path + "/openapi.json",
                self.base_path + "/.well-known/smart-configuration")

    @property
    def auth_path(self) -> str:
        return urlsplit(self.issuer).path


def _blueprint(state: AuthState) -> Blueprint:
    bp = Blueprint("relais_auth", __name__)

    @bp.post(state.auth_path + "/token")
    def token():
        return state.server.create_token_response()

    @bp.get(state.auth_path + "/jwks")
    def jwks():
        response = jsonify(state.keyring.public_jwks())
        response.headers["Cache-Control"] = "public, max-age=60"
        return response

    @bp.post(state.auth_path + "/introspect")
    def introspect():
        return state.server.create_endpoint_response("introspection")

    @bp.post(state.auth_path + "/revoke")
    def revoke():
        return state.server.create_endpoint_response("revocation")

    @bp.get(state.base_path + "/.well-known/smart-configuration")
    def smart_configuration():
        return jsonify(discovery.smart_configuration(state.issuer))

    return bp


def _note_client(client: Client) -> None:
    note_client(client.client_id, client.name)


def init_app(app: Any, store: Any, config: Any) -> None:
    """Install the auth layer on ``app``: endpoints, keys, authentication of requests, their audit."""
    base_url = config.base_url.rstrip("/")
    issuer = _origin(base_url) + "/auth"
    if not config.auth:
        if config.host not in LOOPBACK_HOSTS:
            raise RuntimeError(
                f"RELAIS_AUTH=off is for local development only, but RELAIS_HOST={config.host} is not loopback"
            )
        banner = "!" * 78
        message = (
            f"\n{banner}\n!! RELAIS_AUTH=off: AUTHENTICATION IS DISABLED. Every caller may read and write"
            f" everything.\n!! For local development only. Never run this way with real data.\n{banner}\n"
        )
        log.warning(message)
        print(message, file=sys.stderr)
    # no key work here: the first token, JWKS or verification creates or loads the keys, so a
    # worker starts fast (generating an RSA key takes up to a second) and auth-off never needs one
    keyring = KeyRing(store)
    clients = ClientRegistry(store)
    tokens = TokenService(store, keyring, clients, issuer, base_url, config.token_lifetime_s)
    state = AuthState(
        store=store,
        enabled=bool(config.auth),
        base_url=base_url,
        base_path=urlsplit(base_url).path.rstrip("/"),
        issuer=issuer,
        keyring=keyring,
        clients=clients,
        tokens=tokens,
    )

    assertion = PrivateKeyJWT(
        store, [state.token_url, issuer], RemoteJWKS(tuple(config.jku_allowlist)), on_claim=note_claim
    )
    state.server = build_server(app, store, clients, tokens, assertion, _note_client)
    app.extensions[EXTENSION] = state
    app.extensions[authentication.EXTENSION] = Authenticator(tokens, state.public_paths, enabled=state.enabled)
    # merged into CapabilityStatement.rest[0] by the API's /metadata
    security = discovery.capability_security(issuer, base_url)
    app.extensions.setdefault("relais_capability_extra", {})["security"] = security
    app.register_blueprint(_blueprint(state))
    auditor = RequestAuditor(store, base_url, state.base_path, state.auth_path)
    app.after_request(auditor.after_request)


def startup_help(config: Any) -> str:
    """What ``make run`` prints: how to create a first client and get a token."""
    base_url = config.base_url.rstrip("/")
    token_url = _origin(base_url) + "/auth/token"
    return (
        "Authentication is on (SMART Backend Services). To get going (from the clone; the venv's command):\n"
        '  .venv/bin/relais clients add --name dev --scopes "system/*.cruds" --secret\n'
        f"  curl -u CLIENT_ID:SECRET -d grant_type=client_credentials -d 'scope=system/*.cruds' {token_url}\n"
        f"  curl -H 'Authorization: Bearer ACCESS_TOKEN' '{base_url}/Patient?_count=1'\n"
        "Production clients use private_key_jwt:\n"
        "  .venv/bin/relais clients add --name N --scopes ... --jwks-file public.jwks.json\n"
        "Local development without tokens: RELAIS_AUTH=off (never with real data)."
    )
