"""The authlib authorization server: client_credentials grant, introspection (RFC 7662), revocation (RFC 7009)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidClientError, InvalidScopeError
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from .assertion import PrivateKeyJWT
from .clients import CLIENT_SECRET_BASIC, PRIVATE_KEY_JWT, Client, ClientRegistry
from .scopes import narrow
from .tokens import TokenRejected, TokenService

AUTH_METHODS = [PRIVATE_KEY_JWT, CLIENT_SECRET_BASIC]
WRONG_CREDENTIALS = "unknown client or wrong credentials"


class RelaisAuthorizationServer(AuthorizationServer):
    """authlib's server, saying what a client sending a secret needs to hear.

    authlib answers a wrong secret with "The client cannot authenticate with methods [...]" and an unknown
    client id with "The client does not exist": one hides the cause, the other tells a prober which ids
    exist. Both become one ``invalid_client`` answer. A client assertion's refusal keeps its reason
    (expired, replayed, wrong audience): it tells the client's developer what to fix and reveals no secret.
    """

    def authenticate_client(self, request: Any, methods: list[str], endpoint: str = "token") -> Any:
        try:
            return super().authenticate_client(request, methods, endpoint)
        except InvalidClientError:
            if request.form.get("client_assertion"):
                raise
            raise InvalidClientError(status_code=401, description=WRONG_CREDENTIALS) from None


class BackendServicesGrant(ClientCredentialsGrant):
    """SMART Backend Services: client_credentials with private_key_jwt (client_secret_basic for development)."""

    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS

    def validate_requested_scope(self) -> None:
        client: Client = self.request.client
        if not narrow(self.request.payload.scope, client.scopes, bool(client.patient)):
            raise InvalidScopeError(description="none of the requested scopes is registered for this client")


class VerifiedToken:
    """An access token whose signature and claims checked out; what the endpoints below pass around."""

    def __init__(self, claims: dict):
        self.claims = claims

    def check_client(self, client: Client) -> bool:
        return self.claims.get("client_id") == client.client_id

    def is_expired(self) -> bool:
        return False  # TokenService refused it otherwise

    def is_revoked(self) -> bool:
        return False


class _OurTokens:
    """What introspection and revocation share: our client auth methods, our JWT access tokens.

    ``query_token`` answers None for a token that is not ours or not valid (RFC 7662: inactive;
    RFC 7009: still 200). ``_check`` is the TokenService method that tells.
    """

    CLIENT_AUTH_METHODS = AUTH_METHODS
    SUPPORTED_TOKEN_TYPES = ("access_token",)

    def __init__(self, server: Any, tokens: TokenService):
        super().__init__(server)
        self.tokens = tokens

    def _check(self, token_string: str) -> dict:
        raise NotImplementedError

    def query_token(self, token_string: str, token_type_hint: str | None) -> VerifiedToken | None:
        try:
            return VerifiedToken(self._check(token_string))
        except TokenRejected:
            return None


class Introspection(_OurTokens, IntrospectionEndpoint):
    """For gateways (clients registered with ``--gateway``) and for a client asking about its own token."""

    def _check(self, token_string: str) -> dict:
        return self.tokens.verify(token_string)  # active: valid, not revoked, client enabled

    def check_permission(self, token: VerifiedToken, client: Client, request: Any) -> bool:
        return client.gateway or token.check_client(client)

    def introspect_token(self, token: VerifiedToken) -> dict:
        fields = ("scope", "client_id", "sub", "iss", "aud", "exp", "iat", "nbf", "jti", "patient", "fhirUser")
        payload = {name: token.claims[name] for name in fields if name in token.claims}
        payload.update(active=True, token_type="Bearer")
        return payload


class Revocation(_OurTokens, RevocationEndpoint):
    """A client revokes its own access tokens before they expire."""

    def _check(self, token_string: str) -> dict:
        return self.tokens.decode(token_string)  # signed by us and unexpired is enough to revoke

    def revoke_token(self, token: VerifiedToken, request: Any) -> None:
        self.tokens.revoke(token.claims)


def build_server(
    app: Any,
    store: Any,
    clients: ClientRegistry,
    tokens: TokenService,
    assertion: PrivateKeyJWT,
    on_client: Callable[[Client], None],
) -> AuthorizationServer:
    """An authlib AuthorizationServer wired to the registry, the token service and private_key_jwt."""

    def query_client(client_id: str) -> Client | None:
        client = clients.get(client_id)
        if client is not None:
            on_client(client)
        return client

    server = RelaisAuthorizationServer()
    server.init_app(app, query_client=query_client, save_token=lambda token, request: None)
    server.register_token_generator("default", tokens.authlib_generator)
    server.register_client_auth_method(PRIVATE_KEY_JWT, assertion)
    server.register_grant(BackendServicesGrant)
    server.register_endpoint(Introspection(server, tokens))
    server.register_endpoint(Revocation(server, tokens))
    return server
