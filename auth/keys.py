"""The server's token-signing keys: kept in the store so every worker process signs and verifies alike.

Keys are generations in the ``oauth_keys`` table, keyed ``gen-000001``, ``gen-000002``...: the newest
signs, the newest two verify and are published at ``/auth/jwks``. Rotation inserts the next
generation with ``kv_insert``, so when two processes rotate at once one wins and the other adopts it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from joserfc.jwk import KeySet, RSAKey

TABLE = "oauth_keys"
ALG = "RS384"  # SMART lists RS384 and ES384; RSA verification is the cheaper of the two on every request
ROTATE_AFTER_S = 24 * 3600
RELOAD_EVERY_S = 30.0  # how soon a process notices a rotation made by another one

log = logging.getLogger(__name__)


def _public(jwk: dict) -> dict:
    """The public members of an RSA JWK (n, e and the metadata), without the private ones."""
    return {k: v for k, v in jwk.items() if k not in ("d", "p", "q", "dp", "dq", "qi", "oth")}


def _generation_key(number: int) -> str:
    return f"gen-{number:06d}"


class KeyRing:
    """Current and previous signing key, read from the store and cached per process."""

    def __init__(self, store: Any, rotate_after_s: float = ROTATE_AFTER_S, clock=time.time):
        self.store = store
        self.rotate_after_s = rotate_after_s
        self.clock = clock
        self._lock = threading.Lock()
        self._generations: list[tuple[str, dict]] = []  # newest first, at most two
        self._verify_set: KeySet | None = None
        self._signing_jwk: dict | None = None
        self._signing_key: RSAKey | None = None
        self._loaded_at = float("-inf")

    def _load(self) -> None:
        rows = sorted(((k, doc) for k, doc in self.store.kv_list(TABLE) if k.startswith("gen-")), reverse=True)
        self._generations = rows[:2]
        if rows:
            self._signing_jwk = rows[0][1]["jwk"]
            self._verify_set = KeySet([RSAKey.import_key(_public(doc["jwk"])) for _, doc in self._generations])
        self._loaded_at = self.clock()

    def _insert_generation(self, number: int) -> None:
        key = RSAKey.generate_key(2048, parameters={"alg": ALG, "use": "sig"}, auto_kid=True)
        doc = {"jwk": key.as_dict(private=True), "created": self.clock()}
        if not self.store.kv_insert(TABLE, _generation_key(number), doc):
            log.info("another process created signing key generation %d first", number)

    def refresh(self, force: bool = False) -> None:
        """Reload from the store when stale; create the first key, or rotate an old one."""
        with self._lock:
            if not force and self.clock() - self._loaded_at < RELOAD_EVERY_S and self._generations:
                return
            self._load()
            if not self._generations:
                self._insert_generation(1)
                self._load()
            elif self.clock() - self._generations[0][1]["created"] >= self.rotate_after_s:
                self._insert_generation(int(self._generations[0][0][4:]) + 1)
                self._load()

    def rotate(self) -> str:
        """Start a new generation now (the previous one keeps verifying); returns the new kid."""
        with self._lock:
            self._load()
            newest = int(self._generations[0][0][4:]) if self._generations else 0
            self._insert_generation(newest + 1)
            self._load()
            return self._signing_jwk["kid"]

    def signing_key(self) -> RSAKey:
        """The newest private key; imported on first use only, since importing one costs ~150 ms."""
        self.refresh()
        with self._lock:
            if self._signing_key is None or self._signing_key.kid != self._signing_jwk.get("kid"):
                self._signing_key = RSAKey.import_key(self._signing_jwk)
            return self._signing_key

    def verification_keys(self, kid: str | None = None) -> KeySet:
        """Public keys that verify tokens; reloads early when a token names a kid we do not know yet."""
        self.refresh()
        if kid is not None and all(k.kid != kid for k in self._verify_set.keys):
            with self._lock:
                # at most one early reload per second, so random kids cannot hammer the store
                if self.clock() - self._loaded_at >= 1.0:
                    self._load()
        return self._verify_set

    def public_jwks(self) -> dict:
        """The JWKS document: current and previous public keys."""
        self.refresh()
        return {"keys": [key.as_dict(private=False) for key in self._verify_set.keys]}
