"""The changes a message asks for, as the shared ingest takes them: conditional on a business identifier
(a resend or a correction finds the same resource), or a conditional patch (a document superseded). Pure.

A ``Keyed`` change is a conditional update on one or more identifiers (OR), with a provisional id that
other resources of the message reference until the ingest knows the stored one. Its ``carry`` merges
the version it replaces into it (HL7 v2: what a message does not carry is unchanged, so a later
A08 without PD1 keeps the general practitioner, a merged Patient keeps its links).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from fhir_server import write
from fhir_server.search.parser import SearchError, parse

from .datatypes import authority_system, local_system, provisional_id
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


def _condition(resource_type: str, params: list[tuple[str, str]], key: dict):
    try:
        return parse(resource_type, params, strict=True)
    except SearchError as exc:
        raise Problem(102, f"identifier {key.get('value')!r} cannot be searched: {exc}", "", "AE") from None


def conditional(resource_type: str, resource: dict, key: dict | list[dict], carry: Carry | None = None) -> Keyed:
    """Update the ``resource_type`` whose identifier is ``key`` (create it when there is none): one identifier,
    or several any of which finds it (a practitioner by RPPS or IDNPS, a patient by its old or new IPP).

    Its id is provisional, made from the first key: the id other changes of the message reference.
    """
    keys = key if isinstance(key, list) else [key]
    resource["id"] = provisional(resource_type, keys[0])
    condition = _condition(resource_type, [("identifier", ",".join(token(k) for k in keys))], keys[0])
    return Keyed(write.UPDATE, resource_type, id=resource["id"], resource=resource, condition=condition, carry=carry)


def made_up(kind: str, *parts: str) -> dict:
    """An identifier for what HL7 v2 does not identify, stable for the same ``parts`` (UUID v5)."""
    ident = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:relais:hl7v2:" + kind + ":" + "|".join(parts)))
    return {"system": KEY_SYSTEM + kind, "value": ident}


def provisional(resource_type: str, key: dict) -> str:
    """The provisional id of the ``resource_type`` found by ``key``."""
    return provisional_id(resource_type, token(key))


def entity_identifier(ei, default_authority: str = "") -> dict | None:
    """An EI (entity id, namespace, universal id, its type: DG1-20, PR1-19) as an Identifier."""
    entity = value(ei, 1)
    if not entity:
        return None
    system = authority_system(value(ei, 2), value(ei, 3), value(ei, 4)) or (
        local_system(default_authority) if default_authority else None)
    return {"system": system, "value": entity} if system else {"value": entity}


def created_once(resource_type: str, resource: dict, key: dict) -> write.Change:
    """Create the ``resource_type`` with identifier ``key`` unless one exists (If-None-Exist): a message
    naming a professional must not overwrite what other feeds know of them (their phone numbers)."""
    resource["id"] = provisional_id(resource_type, token(key))
    condition = _condition(resource_type, [("identifier", token(key))], key)
    return write.Change(write.CREATE, resource_type, id=resource["id"], resource=resource, condition=condition)


def once(change: write.Change) -> write.Change:
    """``change`` (a conditional update) as a create unless its resource exists (If-None-Exist)."""
    return write.Change(write.CREATE, change.resource_type, id=change.id, resource=change.resource,
                        condition=change.condition, validated=change.validated)


def patched(resource_type: str, key: dict, operations: list[dict], *, status: str | None = None,
            other_than: dict | None = None) -> write.Change:
    """JSON-patch the ``resource_type`` with identifier ``key`` (in ``status`` when given; not the one with
    identifier ``other_than``). Its id stands for the match, so other changes may reference it."""
    params = [("identifier", token(key))]
    if status:
        params.append(("status", status))
    if other_than is not None:
        params.append(("identifier:not", token(other_than)))
    ident = provisional_id(resource_type, "patch:" + "&".join(f"{n}={v}" for n, v in params))
    return write.Change(write.PATCH, resource_type, id=ident, patch=operations,
                        condition=_condition(resource_type, params, key))


@dataclass
class Changes:
    """The changes of a message with where each comes from (``OBX^2``): what ``map_message`` returns."""

    changes: list[write.Change] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def add(self, change: write.Change, source: str) -> str:
        """Add ``change``; return the reference that names its resource (``Type/id``).

        A professional named twice is created once: two creates would resolve to two new ids.
        """
        if change.action == write.CREATE and any(
                c.action == write.CREATE and (c.resource_type, c.id) == (change.resource_type, change.id)
                for c in self.changes):
            return f"{change.resource_type}/{change.id}"
        self.changes.append(change)
        self.sources.append(source)
        return f"{change.resource_type}/{change.id}"

    def extend(self, other: Changes) -> None:
        self.changes.extend(other.changes)
        self.sources.extend(other.sources)
