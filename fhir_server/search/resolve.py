"""Chains and ``_has`` answered ahead: inner queries become id lists.

``inline_chains`` rewrites each chain predicate into ``reference in (type, ids)`` and each ``_has``
into ``_id in ids``, running the inner queries through callables the caller provides. MongoDB's
find() cannot join, so it inlines every chain; the search service inlines those that traverse
resources the caller may not read all of, through callables that keep only what it may read.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from .extract import index_values
from .query import Predicate, SearchQuery

SearchIds = Callable[[SearchQuery], list[str]]
ReadMany = Callable[[str, list[str]], Iterable[dict]]


def has_chains(query: SearchQuery) -> bool:
    """Whether any predicate needs another resource type's data (chain or _has)."""
    return any(p.chain is not None for clause in query.clauses for p in clause)


def _every(inner: SearchQuery) -> bool:
    return True


def inline_chains(query: SearchQuery, search_ids: SearchIds, read_many: ReadMany,
                  inline: Callable[[SearchQuery], bool] = _every) -> SearchQuery:  # fmt: skip
    """``query`` with its chains run now (innermost first), their ids inlined.

    ``inline(inner)`` chooses which chains (by their inner query) become id lists; the others stay
    chains, over inner queries whose own chains were chosen the same way. By default: every one.
    """
    if not has_chains(query):
        return query
    clauses = []
    for clause in query.clauses:
        preds = []
        for p in clause:
            if p.chain is None:
                preds.append(p)
                continue
            inner = inline_chains(p.chain, search_ids, read_many, inline)
            if not inline(inner):
                preds.append(dataclasses.replace(p, chain=inner))
                continue
            ids = search_ids(inner)
            if p.kind == "has":
                source, ref_param = p.values
                targets: set[str] = set()
                for resource in read_many(source, ids):
                    for row in index_values(resource):
                        if row.param == ref_param and row.kind == "reference" and row.system == query.resource_type:
                            if row.code:
                                targets.add(row.code)
                preds.append(Predicate("_id", "token", "in", (None, tuple(sorted(targets)))))
            else:
                (target,) = p.values
                preds.append(Predicate(p.param, "reference", "in", (target, tuple(ids))))
        clauses.append(tuple(preds))
    return dataclasses.replace(query, clauses=tuple(clauses))
