"""The changes a message asks for, as the shared ingest takes them: conditional on a business identifier
(a resend or a correction finds the same resource), or a conditional patch (a document superseded). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from fhir_server import write
from fhir_server.search.parser import SearchError, parse

from .datatypes import provisional_id
from .problems import Problem


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


def conditional(resource_type: str, resource: dict, key: dict) -> write.Change:
    """Update the ``resource_type`` whose identifier is ``key`` (create it when there is none)."""
    resource["id"] = provisional_id(resource_type, token(key))
    condition = _condition(resource_type, [("identifier", token(key))], key)
    return write.Change(write.UPDATE, resource_type, id=resource["id"], resource=resource, condition=condition)


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
