"""SMART scopes, v2 (``system/Observation.cruds``, granular ``...rs?category=...``) and v1 (``.read``), parsed once.

A scope grants permissions (letters of ``cruds``) on a resource type (or ``*``) in a context:
``system`` and ``user`` (a backend client has no end user, so both mean "whatever the client was
registered for") or ``patient`` (only the compartment of the token's ``patient`` claim).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PERMISSIONS = "cruds"
CONTEXTS = ("system", "user", "patient")
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}
_SCOPE = re.compile(r"^(system|user|patient)/([A-Z][A-Za-z]*|\*)\.([a-z*]+)(?:\?(.+))?$")

# What each interaction needs, in SMART v2 letters (SMART App Launch 2.x, "Scopes for requesting
# clinical data"): instance history is a read, type and system history are searches.
INTERACTION_PERMISSION = {
    "read": "r",
    "vread": "r",
    "history-instance": "r",
    "search": "s",
    "history-type": "s",
    "history-system": "s",
    "create": "c",
    "update": "u",
    "patch": "u",
    "delete": "d",
}


@dataclass(frozen=True)
class Scope:
    """One granted scope: ``context/type.permissions``."""

    context: str
    resource_type: str  # "*" for every type
    permissions: frozenset[str]
    query: str | None = None  # SMART v2 granular scope: only resources matching ``Type?query``

    def covers_type(self, resource_type: str | None) -> bool:
        return self.resource_type == "*" or self.resource_type == resource_type

    def covers(self, other: Scope) -> bool:
        """Whether everything ``other`` grants is granted by this scope (used to narrow requests)."""
        return (
            self.context == other.context
            and (self.resource_type == "*" or self.resource_type == other.resource_type)
            and other.permissions <= self.permissions
            and (self.query is None or self.query == other.query)
        )

    def matches(self, resource: dict) -> bool:
        """Whether a granular scope's query admits ``resource`` (always, for a scope without one)."""
        if self.query is None:
            return True
        compiled = _compiled_query(self.resource_type, self.query)
        if compiled is None:
            return False
        from fhir_server.search.matcher import matches

        return matches(compiled, resource)


@lru_cache(maxsize=4096)
def parse_scope(text: str) -> Scope | None:
    """The Scope that ``text`` means, or None for anything else (``launch``, ``openid``, v1 with a query...).

    v2 letters must appear in ``cruds`` order. A v2 granular scope (``patient/Observation.rs?category=
    laboratory``) needs a concrete type and a query the search parser accepts; otherwise it is not
    understood and grants nothing (fail closed).
    """
    match = _SCOPE.match(text)
    if not match:
        return None
    context, resource_type, perms, query = match.groups()
    if query is not None and (perms in _V1 or resource_type == "*" or _compiled_query(resource_type, query) is None):
        return None
    if perms in _V1:
        letters = _V1[perms]
    else:
        if any(p not in PERMISSIONS for p in perms) or len(set(perms)) != len(perms):
            return None
        if "".join(sorted(perms, key=PERMISSIONS.index)) != perms:
            return None
        letters = perms
    return Scope(context, resource_type, frozenset(letters), query)


@lru_cache(maxsize=1024)
def _compiled_query(resource_type: str, query: str):
    """The search IR of a granular scope's query, or None when the parser refuses it."""
    from fhir_server.search.parser import SearchError, parse_criteria

    try:
        return parse_criteria(f"{resource_type}?{query}", strict=True)
    except (SearchError, ValueError, KeyError):
        return None


def parse_scopes(scopes: str | list[str] | tuple[str, ...]) -> list[Scope]:
    """The understood scopes of a space-separated string or a list (others are dropped)."""
    items = scopes.split() if isinstance(scopes, str) else scopes
    parsed = [parse_scope(item) for item in items]
    return [scope for scope in parsed if scope is not None]


def validate_scope_list(scopes: list[str]) -> list[str]:
    """Return the scopes unchanged or raise ValueError naming the first one that is not a SMART scope."""
    for item in scopes:
        if parse_scope(item) is None:
            raise ValueError(f"not a SMART scope Relais understands: {item!r}")
    return scopes


def narrow(requested: str | None, registered: list[str], has_patient: bool) -> list[str]:
    """The scopes to grant: each requested scope that a registered one covers (all registered if none requested).

    ``patient/`` scopes are dropped when the client has no patient context to put in the token.
    """
    allowed = [scope for scope in parse_scopes(registered) if has_patient or scope.context != "patient"]
    if not requested:
        return [text for text in registered if (s := parse_scope(text)) is not None and s in allowed]
    granted = []
    for text in dict.fromkeys(requested.split()):
        scope = parse_scope(text)
        if scope is not None and any(a.covers(scope) for a in allowed):
            granted.append(text)
    return granted


def permission_for(interaction: str) -> str | None:
    """The permission letter ``interaction`` needs, or None when it is not a plain REST interaction."""
    return INTERACTION_PERMISSION.get(interaction)


def scopes_supported() -> list[str]:
    """Examples for the smart-configuration document (the grammar is open: any type, any letters)."""
    return [
        "system/*.cruds",
        "system/*.rs",
        "system/*.read",
        "system/*.write",
        "user/*.cruds",
        "user/*.rs",
        "patient/*.cruds",
        "patient/*.rs",
        "patient/*.read",
    ]


# An access policy, not the compartment: types in no patient's compartment that a patient/ scope still
# needs to make sense of its own (who performed, which ward). patient/ scopes may read and search these,
# never write them.
SHARED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "Medication"})
