"""Referential integrity: the local references of a resource, which the write path checks inside its transaction.

A local reference is a relative literal one, ``Type/id`` or ``Type/id/_history/v``, to a type this server
serves. ``#x`` (contained), ``urn:`` and absolute URLs (another server's resources) are not local.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from .resources import is_supported

_LOCAL = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[A-Za-z0-9\-.]{1,64})?")

# Whose references need not resolve here: an audit record names what was asked for, existing or not
# (a refused read of Patient/x, a deleted resource); a stored Bundle's entries refer to one another.
_EXEMPT = frozenset({"AuditEvent", "Bundle"})


@dataclass(frozen=True)
class Target:
    """What one local reference names."""

    reference: str
    resource_type: str
    id: str
    versioned: bool


def local_references(resource: dict) -> Iterator[Target]:
    """Each distinct local reference under ``resource`` (contained resources included), in document order."""
    if resource.get("resourceType") in _EXEMPT:
        return
    seen: set[str] = set()
    for value in _references(resource):
        if value in seen:
            continue
        seen.add(value)
        match = _LOCAL.fullmatch(value)
        if match and is_supported(match.group(1)):
            yield Target(value, match.group(1), match.group(2), match.group(3) is not None)


def _references(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                yield value
            elif isinstance(value, (dict, list)):
                yield from _references(value)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                yield from _references(item)


def reference_path(resource: dict, reference: str) -> str:
    """The FHIRPath of the first Reference element whose ``reference`` is ``reference`` (``Observation.subject``)."""

    def find(node: object, path: str) -> str | None:
        if isinstance(node, dict):
            if node.get("reference") == reference:
                return path
            for key, value in node.items():
                found = find(value, f"{path}.{key}") if isinstance(value, (dict, list)) else None
                if found:
                    return found
        elif isinstance(node, list):
            for i, item in enumerate(node):
                found = find(item, f"{path}[{i}]")
                if found:
                    return found
        return None

    return find(resource, str(resource.get("resourceType"))) or str(resource.get("resourceType"))
