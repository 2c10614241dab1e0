"""The actor a registered client stands for outside any request: a Subscription's owner, a feed's
client, an internal job (the triage engine, the pre-DMP builder)."""

from __future__ import annotations

from typing import Any

from fhir_server.actor import CLIENT, INTERNAL, Actor

from .clients import ClientRegistry


def caller_for_client(store: Any, client_id: str) -> Actor:
    """The actor a registered client stands for outside any request (a Subscription's deliveries).

    Its registered scopes and patient context; an unknown or disabled client gets no scope at all,
    so ``can_read`` refuses everything (never None, which would mean "authentication off").
    """
    client = ClientRegistry(store).get(client_id)
    if client is None or not client.enabled:
        return Actor(client_id=client_id)
    kind = INTERNAL if client.internal else CLIENT
    return Actor(client_id=client_id, scopes=tuple(client.scopes), patient=client.patient, kind=kind,
                 name=client.name)


def internal_actor(store: Any, kind: str) -> Actor:
    """The actor of the registered internal client ``kind`` (``relais-triage``...), with its scopes.

    Raises LookupError when ``kind`` is not registered as an internal actor (``relais clients internal``);
    a disabled one acts with no scope, so every decision refuses it.
    """
    client = ClientRegistry(store).get(kind)
    if client is None or not client.internal:
        raise LookupError(f"{kind!r} is not registered as an internal actor: relais clients internal {kind} ...")
    scopes = tuple(client.scopes) if client.enabled else ()
    return Actor(client_id=client.client_id, scopes=scopes, kind=INTERNAL, name=client.name)
