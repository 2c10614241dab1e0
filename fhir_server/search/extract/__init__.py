"""Index extraction: the search rows of a resource, following the registry's FHIRPath expressions.

``paths`` compiles each expression (a fast walker, or fhirpathpy), ``rows`` turns the typed values it
finds into ``IndexRow``s, and ``cache`` keeps the compiled extractors of each type.
``index_values_reference`` uses fhirpathpy for every expression: tests prove both give the same rows
on the shared examples.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..query import IndexRow
from ..units import affine
from .cache import extractors

__all__ = ["extractors", "index_values", "index_values_reference", "warm_up"]


def _index(resource: dict, fast: bool) -> list[IndexRow]:
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise ValueError("resource without resourceType")
    rows: list[IndexRow] = []
    seen: set[IndexRow] = set()
    for ex in extractors(rtype, fast):
        for r in ex.rows(resource):
            if r not in seen:
                seen.add(r)
                rows.append(r)
    return rows


def index_values(resource: dict) -> list[IndexRow]:
    """All index rows of ``resource`` for every registry parameter of its type (duplicates removed)."""
    return _index(resource, True)


def index_values_reference(resource: dict) -> list[IndexRow]:
    """The same rows computed by fhirpathpy alone: the yardstick for the fast walker."""
    return _index(resource, False)


def warm_up(resource_types: Iterable[str]) -> None:
    """Compile the extractors of ``resource_types`` and load the UCUM tables now, not on a first write.

    The first UCUM quantity otherwise costs that write a second or two (unit grammar and pint).
    """
    for rtype in resource_types:
        extractors(rtype)
    affine("kg")
