"""Changes found again by a business identifier: a message sent again, or the next event, updates
what an earlier one wrote instead of duplicating it. Pure.

A ``Keyed`` change is a conditional update on one or more identifiers (OR), with a provisional id that
other resources of the message reference until the ingest knows the stored one. Its ``carry`` merges
the version it replaces into it (HL7 v2: what a message does not carry is unchanged, so a later
A08 without PD1 keeps the general practitioner, a merged Patient keeps its links).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fhir_server import write
from fhir_server.search.parser import SearchError, parse

from .datatypes import authority_system, provisional_id
from .er7 import value
from .problems import Problem

# Identifiers the mapper makes up for what HL7 v2 gives no identifier of its own (an allergy, a consent)
KEY_SYSTEM = "urn:relais:hl7v2:key:"

Carry = Callable[[dict, dict], dict]  # (the stored version, the message's resource) -> the resource to store


@dataclass
class Keyed(write.Change):
    """A conditional update whose ``carry`` (pure) merges the stored version it replaces, if any."""

    carry: Carry | None = None


def token(ident: dict) -> str:
    """``system|value`` as a token search value (\\ , | $ escaped, R4 search.html#escaping)."""

    def escape(text: str) -> str:
        for char in ("\\", ",", "|", "$"):
            text = text.replace(char, "\\" + char)
        return text

    return f"{escape(ident.get('system', ''))}|{escape(ident['value'])}"


def conditional(resource_type: str, resource: dict, key: dict | list[dict], carry: Carry | None = None) -> Keyed:
    """The conditional update of ``resource`` (its id provisional) on ``key``: one identifier, or several
    any of which finds it (a practitioner by RPPS or IDNPS, a patient by its old or new IPP)."""
    keys = key if isinstance(key, list) else [key]
    try:
        condition = parse(resource_type, [("identifier", ",".join(token(k) for k in keys))], strict=True)
    except SearchError as exc:
        raise Problem(102, f"identifier {keys[0].get('value')!r} cannot be searched: {exc}", "", "AE") from None
    return Keyed(write.UPDATE, resource_type, id=resource["id"], resource=resource, condition=condition, carry=carry)


def made_up(kind: str, *parts: str) -> dict:
    """An identifier for what HL7 v2 does not identify, stable for the same ``parts`` (UUID v5)."""
    value = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:relais:hl7v2:" + kind + ":" + "|".join(parts)))
    return {"system": KEY_SYSTEM + kind, "value": value}


def provisional(resource_type: str, key: dict) -> str:
    """The provisional id of the ``resource_type`` found by ``key``."""
    return provisional_id(resource_type, token(key))


def entity_identifier(ei, default_authority: str = "") -> dict | None:
    """An EI (entity id, namespace, universal id, its type: DG1-20, PR1-19) as an Identifier."""
    entity = value(ei, 1)
    if not entity:
        return None
    system = authority_system(value(ei, 2), value(ei, 3), value(ei, 4)) or (
        authority_system(default_authority, "") if default_authority else None)
    return {"system": system, "value": entity} if system else {"value": entity}
