"""The search IR: what a parsed search means, independent of any backend.

A query string is parsed once (``parser.parse``) into a ``SearchQuery``; store backends
compile it (SQL, MongoDB filter) and ``matcher`` evaluates it against one resource in memory.
Index values extracted at write time are ``IndexRow`` tuples, the same for both backends.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class IndexRow(NamedTuple):
    """One extracted search value of a resource; fields used per ``kind``.

    token:     system, code, text (display / CodeableConcept.text, for ``:text``)
    string:    code (normalised: casefolded, accents stripped), text (as written)
    date:      low, high (epoch seconds, inclusive range of the value's precision)
    reference: system (target type), code (target id), text (reference as written)
    quantity:  low = high = value, system (unit system), code (unit code)
    number:    low = high = value
    uri:       code
    composite: parameter-specific use of the same fields (see extract/cache.py, Extractor)
    """

    param: str
    kind: str
    system: str | None = None
    code: str | None = None
    text: str | None = None
    low: float | None = None
    high: float | None = None


class SortKey(NamedTuple):
    """One ``_sort`` key: the parameter, its direction, and its kind (``date``, ``token``...), which tells a
    backend how to order the values of the parameter's rows without looking the parameter up."""

    param: str
    descending: bool = False
    kind: str = "string"


@dataclass(frozen=True)
class Predicate:
    """One test on one search parameter.

    ``op`` is a prefix (eq ne lt gt le ge sa eb ap) or a modifier (exact contains text not
    missing above below of-type identifier type). ``values`` are kind-specific operands; for
    token ``(system, code)`` where ``None`` means "any". ``chain`` holds the inner query of a
    chained parameter or of ``_has``.
    """

    param: str
    kind: str
    op: str = "eq"
    values: tuple = ()
    chain: SearchQuery | None = None


@dataclass(frozen=True)
class SearchQuery:
    """A whole search: AND of clauses, each clause an OR of predicates; plus result controls."""

    resource_type: str
    clauses: tuple[tuple[Predicate, ...], ...] = ()
    sort: tuple[SortKey, ...] = ()
    count: int = 20
    offset: int = 0
    total: str = "accurate"  # accurate | none | estimate
    summary: str | None = None
    elements: tuple[str, ...] = ()
    include: tuple[str, ...] = ()  # "Type:param" or "Type:param:Target" (or "*")
    revinclude: tuple[str, ...] = ()
    # The subsets of include / revinclude asked with ``:iterate`` (followed from included resources too).
    include_iterate: tuple[str, ...] = ()
    revinclude_iterate: tuple[str, ...] = ()
    warnings: tuple[str, ...] = field(default=(), compare=False)
