"""``relais-predmp``: the internal actor the platform writes the pre-DMP as (never the caller)."""

from __future__ import annotations

import logging
from typing import Any

import auth
from auth.clients import ClientRegistry
from fhir_server.actor import Actor

log = logging.getLogger("relais.predmp")

KIND = "relais-predmp"
# What the builder and the sender read and write; ``relais clients internal relais-predmp --scopes`` narrows it.
DEFAULT_SCOPES = ["system/*.rs", "system/DocumentReference.cru", "system/Binary.cru", "system/Provenance.c"]


def predmp_actor(store: Any) -> Actor:
    """The registered ``relais-predmp`` actor; registered with DEFAULT_SCOPES the first time it is needed.

    A disabled one acts with no scope: every decision then refuses it, and nothing is written.
    """
    try:
        return auth.internal_actor(store, KIND)
    except LookupError:
        log.info("registering the internal actor %s with scopes %s", KIND, " ".join(DEFAULT_SCOPES))
        ClientRegistry(store).add_internal(KIND, DEFAULT_SCOPES)
        return auth.internal_actor(store, KIND)


def decide(actor: Actor, interaction: str, resource_type: str, resource: dict | None = None) -> None:
    """Raise AccessDenied unless the pre-DMP's actor may do this (its scopes, as any client's)."""
    auth.decide(actor, interaction, resource_type, resource, None if interaction == "update" else auth.UNREAD)
