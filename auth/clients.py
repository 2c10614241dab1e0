"""The client registry (table ``oauth_clients``) and the client model authlib asks questions of."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from joserfc.jwk import KeySet

from fhir_server.resources import valid_id

from .scopes import parse_scopes, validate_scope_list

TABLE = "oauth_clients"
PRIVATE_KEY_JWT = "private_key_jwt"
CLIENT_SECRET_BASIC = "client_secret_basic"
INTERNAL = "internal"  # an auth method no token request can use: internal actors never get tokens
# The internal actors the server's own jobs act as: client id -> what it is
INTERNAL_KINDS = {
    "relais-triage": "the triage engine",
    "relais-predmp": "the pre-DMP builder",
}


def _hash_secret(secret: str) -> str:
    # Secrets are 256 random bits made by ``add``: a plain digest cannot be brute-forced, and a
    # slow KDF would cost every client_secret_basic token request.
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class Client:
    """A registered backend-services client."""

    client_id: str
    name: str
    scopes: list[str]
    auth_method: str  # private_key_jwt | client_secret_basic | internal
    jwks: dict | None = None
    jwks_url: str | None = None
    secret_hash: str | None = None
    patient: str | None = None  # the patient context of patient/ scopes
    practitioner: str | None = None  # the Practitioner its tokens act for (their fhirUser claim)
    gateway: bool = False  # may introspect any token
    enabled: bool = True
    created: float = field(default_factory=time.time)

    # --- the authlib ClientMixin questions ---
    def get_client_id(self) -> str:
        return self.client_id

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash:
            return False
        return hmac.compare_digest(self.secret_hash, _hash_secret(client_secret))

    @property
    def internal(self) -> bool:
        """An internal actor (a job of the server): it has scopes but no credentials and gets no token."""
        return self.auth_method == INTERNAL

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return self.enabled and not self.internal and method == self.auth_method

    def check_grant_type(self, grant_type: str) -> bool:
        return not self.internal and grant_type == "client_credentials"

    def public_keys(self) -> KeySet | None:
        return KeySet.import_key_set(self.jwks) if self.jwks else None

    def summary(self) -> dict:
        """What ``relais clients list`` shows: never the secret hash or keys."""
        return {
            "client_id": self.client_id,
            "name": self.name,
            "scopes": " ".join(self.scopes),
            "auth": self.auth_method,
            "jwks_url": self.jwks_url,
            "patient": self.patient,
            "practitioner": self.practitioner,
            "enabled": self.enabled,
        }


class ClientRegistry:
    """Clients stored in the store's ``oauth_clients`` table."""

    def __init__(self, store: Any):
        self.store = store

    def add(
        self,
        name: str,
        scopes: list[str],
        jwks: dict | None = None,
        jwks_url: str | None = None,
        secret: bool = False,
        patient: str | None = None,
        gateway: bool = False,
        practitioner: str | None = None,
    ) -> tuple[Client, str | None]:
        """Register a client; returns it and, for ``secret``, the one-time clear secret."""
        validate_scope_list(scopes)
        if sum((jwks is not None, jwks_url is not None, secret)) != 1:
            raise ValueError("give exactly one of a JWKS, a JWKS URL or --secret")
        if any(s.context == "patient" for s in parse_scopes(scopes)) and not patient:
            raise ValueError("patient/ scopes need --patient ID (the patient context of the tokens)")
        if practitioner is not None and not valid_id(practitioner):
            raise ValueError(f"--practitioner {practitioner!r} is not a FHIR id")
        if jwks is not None:
            keys = KeySet.import_key_set(jwks)  # raises on a malformed JWKS
            if any(k.is_private for k in keys.keys):
                raise ValueError("the JWKS holds a private key: register the public keys only")
        clear = secrets.token_urlsafe(32) if secret else None
        client = Client(
            client_id=str(uuid.uuid4()),
            name=name,
            scopes=list(scopes),
            auth_method=CLIENT_SECRET_BASIC if secret else PRIVATE_KEY_JWT,
            jwks=jwks,
            jwks_url=jwks_url,
            secret_hash=_hash_secret(clear) if clear else None,
            patient=patient,
            practitioner=practitioner,
            gateway=gateway,
        )
        self.store.kv_put(TABLE, client.client_id, asdict(client))
        return client, clear

    def add_internal(self, kind: str, scopes: list[str]) -> Client:
        """Register (or re-scope) the internal actor ``kind`` (one of INTERNAL_KINDS): its client id is
        the kind; it holds no secret and no keys, so the token endpoint refuses it."""
        if kind not in INTERNAL_KINDS:
            raise ValueError(f"{kind!r} is not an internal actor (one of {', '.join(INTERNAL_KINDS)})")
        validate_scope_list(scopes)
        if any(s.context == "patient" for s in parse_scopes(scopes)):
            raise ValueError("an internal actor acts for no single patient: give it system/ scopes")
        client = Client(client_id=kind, name=INTERNAL_KINDS[kind], scopes=list(scopes), auth_method=INTERNAL)
        self.store.kv_put(TABLE, client.client_id, asdict(client))
        return client

    def get(self, client_id: str) -> Client | None:
        if not isinstance(client_id, str) or not client_id:
            return None
        doc = self.store.kv_get(TABLE, client_id)
        return Client(**doc) if doc else None

    def list(self) -> list[Client]:
        return sorted((Client(**doc) for _, doc in self.store.kv_list(TABLE)), key=lambda c: c.created)

    def set_enabled(self, client_id: str, enabled: bool) -> bool:
        client = self.get(client_id)
        if client is None:
            return False
        client.enabled = enabled
        self.store.kv_put(TABLE, client_id, asdict(client))
        return True
