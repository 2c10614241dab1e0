"""``private_key_jwt`` client authentication (RFC 7523 as profiled by SMART Backend Services).

Registered with authlib's AuthorizationServer as a client auth method. Stricter than authlib's
generic JWTBearerClientAssertion where SMART asks: only RS384/ES384, ``exp`` at most five minutes
ahead, ``jti`` single use across all worker processes (the store's ``kv_insert``), and keys either
registered with the client or fetched from a ``jku`` that is both the client's and on the allow-list.
"""

from __future__ import annotations

import inspect
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from joserfc import jws, jwt
from joserfc.errors import ClaimError, JoseError
from joserfc.jwk import KeySet

from .clients import PRIVATE_KEY_JWT, Client
from .tokens import purge_expired

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_AHEAD_S = 300  # SMART: exp no more than five minutes in the future
LEEWAY_S = 30
JTI_TABLE = "oauth_jti"
JWKS_CACHE_S = 300.0
PURGE_EVERY_S = 600.0

log = logging.getLogger(__name__)


def _reject(description: str) -> InvalidClientError:
    return InvalidClientError(status_code=401, description=description)


class RemoteJWKS:
    """JWKS documents fetched from allow-listed URLs, cached a few minutes per process."""

    def __init__(self, allowlist: tuple[str, ...], fetch: Callable[[str], dict] | None = None):
        self.allowlist = tuple(allowlist)
        self.fetch = fetch or self._http_get
        self._cache: dict[str, tuple[float, KeySet]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _http_get(url: str) -> dict:
        import requests  # only jku clients need it; keeps it off every worker's start-up

        response = requests.get(url, timeout=5, allow_redirects=False, headers={"Accept": "application/json"})
        response.raise_for_status()
        return response.json()

    def get(self, url: str, kid: str | None) -> KeySet:
        if url not in self.allowlist:
            raise _reject(f"jku {url!r} is not on the server's allow-list")
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(url)
        fresh = cached is not None and now - cached[0] < JWKS_CACHE_S
        # a kid we have not seen means the client rotated: refetch, but at most every 10 s
        known = cached is not None and (kid is None or any(k.kid == kid for k in cached[1].keys))
        if fresh and (known or now - cached[0] < 10.0):
            return cached[1]
        try:
            keys = KeySet.import_key_set(self.fetch(url))
        except Exception as exc:  # network, HTTP status, JSON or JWK errors all mean "cannot verify"
            log.warning("cannot fetch JWKS %s: %s", url, exc)
            raise _reject(f"cannot fetch the client's JWKS from {url}") from None
        with self._lock:
            self._cache[url] = (now, keys)
        return keys


class PrivateKeyJWT:
    """Callable ``(query_client, request) -> Client | None`` for authlib's client authentication registry."""

    def __init__(
        self,
        store: Any,
        audiences: list[str],
        remote: RemoteJWKS,
        on_claim: Callable[[str], None] = lambda client_id: None,
    ):
        self.store = store
        self.audiences = audiences
        self.remote = remote
        self.on_claim = on_claim  # told the claimed client_id before verification, for auditing failures
        # A remembered jti need not reach the disk: losing it takes a power cut, and then only lets an
        # assertion of the last five minutes be replayed. A durable insert (an fsync, ~10 ms here)
        # per token would cap the token endpoint near 100/s. Used when the store offers the option.
        self._jti_insert_kwargs = {"durable": False} if _accepts(store.kv_insert, "durable") else {}
        self._purged_at = time.monotonic()
        self._registered: dict[str, KeySet] = {}

    def __call__(self, query_client: Callable[[str], Client | None], request: Any) -> Client | None:
        form = request.form
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return None
        assertion = form["client_assertion"]
        try:
            # read header and claims before verifying, only to find the client and its keys
            compact = jws.extract_compact(assertion.encode())
            header = compact.headers()
            unverified = json.loads(compact.payload)
        except (JoseError, ValueError, UnicodeDecodeError):
            raise _reject("client_assertion is not a compact JWS") from None
        if not isinstance(unverified, dict):
            raise _reject("client_assertion payload is not a JSON object")
        if header.get("alg") not in ALGORITHMS:
            raise _reject(f"client_assertion alg must be one of {', '.join(ALGORITHMS)}")
        client_id = unverified.get("sub")
        if not isinstance(client_id, str) or unverified.get("iss") != client_id:
            raise _reject("client_assertion iss and sub must both be the client_id")
        self.on_claim(client_id)
        client = query_client(client_id)
        if client is None or not client.enabled or client.auth_method != PRIVATE_KEY_JWT:
            raise _reject("unknown or disabled client, or not registered for private_key_jwt")
        keys = self._keys(client, header)
        try:
            token = jwt.decode(assertion, keys, algorithms=list(ALGORITHMS))
        except JoseError as exc:
            raise _reject(f"client_assertion signature rejected: {exc.error}") from None
        claims = token.claims
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY_S,
            iss={"essential": True, "value": client_id},
            sub={"essential": True, "value": client_id},
            aud={"essential": True, "values": self.audiences},
            exp={"essential": True},
            jti={"essential": True},
        )
        try:
            registry.validate(claims)
        except ClaimError as exc:
            raise _reject(f"client_assertion claim {exc.claim!r} rejected: {exc.description}") from None
        now = time.time()
        if claims["exp"] > now + MAX_AHEAD_S + LEEWAY_S:
            raise _reject("client_assertion exp is more than five minutes ahead")
        # single use: the first process to insert the jti wins, every replay is refused
        key = f"{client_id}:{claims['jti']}"
        if not self.store.kv_insert(JTI_TABLE, key, {"exp": claims["exp"]}, **self._jti_insert_kwargs):
            raise _reject("client_assertion jti already used (replay)")
        self._maybe_purge()
        return client

    def _maybe_purge(self) -> None:
        # every process sweeps now and then, so the table stays the size of five minutes of tokens
        now = time.monotonic()
        if now - self._purged_at >= PURGE_EVERY_S:
            self._purged_at = now
            purge_expired(self.store, JTI_TABLE)

    def _keys(self, client: Client, header: dict) -> KeySet:
        jku = header.get("jku")
        if jku is not None:
            if jku != client.jwks_url:
                raise _reject("jku is not the JWKS URL registered for this client")
            return self.remote.get(jku, header.get("kid"))
        if client.jwks:
            # importing an RSA public key costs ~1 ms: keep each registered JWKS imported, keyed by
            # its content so a client registered again with new keys gets them at once
            cache_key = json.dumps(client.jwks, sort_keys=True)
            keys = self._registered.get(cache_key)
            if keys is None:
                keys = client.public_keys()
                if len(self._registered) >= 1024:
                    self._registered.clear()
                self._registered[cache_key] = keys
            return keys
        if client.jwks_url:
            return self.remote.get(client.jwks_url, header.get("kid"))
        raise _reject("no public key registered for this client")


def _accepts(function: Callable, parameter: str) -> bool:
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
