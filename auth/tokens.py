"""Access tokens: signed JWTs (RFC 9068 shape) issued to clients and checked on every request."""

from __future__ import annotations

import secrets
import time
from typing import Any

from authlib.oauth2.rfc6749 import InvalidScopeError
from joserfc import jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError

from .clients import Client, ClientRegistry
from .keys import ALG, KeyRing
from .scopes import narrow

REVOKED_TABLE = "oauth_revoked"
LEEWAY_S = 30  # clock skew tolerated between Relais processes and gateways
VERIFIED_CACHE_SIZE = 4096  # tokens whose signature and claims this process already checked
# How long a process trusts its last look at the store for one token: a revocation made by another
# process, or ``relais clients disable``, takes effect within this time (at once in the revoking one).
RECHECK_S = 1.0


class TokenRejected(Exception):
    """An access token that does not authenticate anyone; ``code`` is the OperationOutcome issue code."""

    def __init__(self, message: str, code: str = "login"):
        super().__init__(message)
        self.message = message
        self.code = code


class TokenService:
    """Issues, verifies and revokes access tokens."""

    def __init__(
        self,
        store: Any,
        keyring: KeyRing,
        clients: ClientRegistry,
        issuer: str,
        audience: str,
        lifetime_s: int,
    ):
        self.store = store
        self.keyring = keyring
        self.clients = clients
        self.issuer = issuer
        self.audience = audience
        self.lifetime_s = lifetime_s
        # A client sends the same token for its whole life (5 minutes): verifying the signature and
        # claims once per process, and looking at the store once a second, not per request, is most
        # of the cost of auth on a read. token -> [claims, monotonic time of the last store check]
        self._verified: dict[str, list] = {}

    def issue(self, client: Client, requested_scope: str | None) -> dict:
        """The token response for ``client``: the requested scopes it is registered for, or invalid_scope."""
        granted = narrow(requested_scope, client.scopes, bool(client.patient))
        if not granted:
            raise InvalidScopeError(description="none of the requested scopes is registered for this client")
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": client.client_id,
            "client_id": client.client_id,
            "scope": " ".join(granted),
            "iat": now,
            "nbf": now,
            "exp": now + self.lifetime_s,
            "jti": secrets.token_urlsafe(16),
        }
        if client.patient and any(s.startswith("patient/") for s in granted):
            claims["patient"] = client.patient
        if client.practitioner:
            # SMART's fhirUser: the user the token acts for, here the doctor the client was registered for
            claims["fhirUser"] = f"Practitioner/{client.practitioner}"
        key = self.keyring.signing_key()
        token = jwt.encode({"alg": ALG, "typ": "at+jwt", "kid": key.kid}, claims, key, algorithms=[ALG])
        response = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime_s,
            "scope": claims["scope"],
        }
        if "patient" in claims:
            response["patient"] = claims["patient"]
        return response

    def authlib_generator(
        self, grant_type: str, client: Client, user=None, scope=None, expires_in=None, include_refresh_token=False
    ) -> dict:
        """The token generator signature authlib's AuthorizationServer calls."""
        return self.issue(client, scope)

    def decode(self, token: str) -> dict:
        """Verified claims of ``token`` (signature, alg, iss, aud, exp, nbf); raises TokenRejected."""
        try:
            # only our own algorithm: refuses "none", HS256 keyed with the public key, and any switch of alg
            decoded = jwt.decode(
                token, lambda obj: self.keyring.verification_keys(obj.headers().get("kid")), algorithms=[ALG]
            )
        except JoseError as exc:
            raise TokenRejected(f"access token rejected: {exc.error}: signature or format invalid") from None
        options = {
            "iss": {"essential": True, "value": self.issuer},
            "aud": {"essential": True, "value": self.audience},
            "exp": {"essential": True},
            "jti": {"essential": True},
            "client_id": {"essential": True},
            "scope": {"essential": True},
        }
        registry = jwt.JWTClaimsRegistry(leeway=LEEWAY_S, **options)
        try:
            registry.validate(decoded.claims)
        except ExpiredTokenError:
            raise TokenRejected("access token expired: request a new one at the token endpoint", "expired") from None
        except ClaimError as exc:  # wrong iss or aud, missing claim, not yet valid (nbf / iat ahead)
            raise TokenRejected(f"access token claim {exc.claim!r} rejected: {exc.description}") from None
        if not isinstance(decoded.claims.get("scope"), str) or not isinstance(decoded.claims.get("client_id"), str):
            raise TokenRejected("access token rejected: malformed scope or client_id")
        return decoded.claims

    def verify(self, token: str) -> dict:
        """Claims of a token that is valid now: not expired, not revoked, issued to a client still enabled."""
        entry = self._verified.get(token)
        if entry is None:
            entry = [self.decode(token), float("-inf")]
            if len(self._verified) >= VERIFIED_CACHE_SIZE:
                self._verified.clear()  # crude but bounded; a miss costs one verification
            self._verified[token] = entry
        claims = entry[0]
        if claims["exp"] <= time.time() - LEEWAY_S:
            self._verified.pop(token, None)
            raise TokenRejected("access token expired: request a new one at the token endpoint", "expired")
        now = time.monotonic()
        if now - entry[1] >= RECHECK_S:
            if self.store.kv_get(REVOKED_TABLE, claims["jti"]) is not None:
                raise TokenRejected("access token revoked")
            client = self.clients.get(claims["client_id"])
            if client is None or not client.enabled:
                raise TokenRejected("the client of this access token is disabled")
            entry[1] = now
        return claims

    def revoke(self, claims: dict) -> None:
        """Refuse this token from now on (kept until it would have expired anyway, see purge_expired)."""
        doc = {"exp": claims.get("exp"), "client_id": claims.get("client_id")}
        self.store.kv_put(REVOKED_TABLE, claims["jti"], doc)
        for token, entry in list(self._verified.items()):
            if entry[0].get("jti") == claims["jti"]:
                self._verified.pop(token, None)  # refused at once here; elsewhere within RECHECK_S
        purge_expired(self.store, REVOKED_TABLE)  # revocations are rare: the sweep rides along


def purge_expired(store: Any, table: str, now: float | None = None) -> int:
    """Drop entries of ``table`` whose ``exp`` has passed: remembered assertion ids (a replay would
    fail on exp anyway) and revoked access tokens (they would fail on exp too)."""
    limit = (time.time() if now is None else now) - LEEWAY_S
    stale = [key for key, doc in store.kv_list(table) if (doc.get("exp") or 0) < limit]
    for key in stale:
        store.kv_delete(table, key)
    return len(stale)
