"""Compile the search IR to a MongoDB filter over current-version documents.

Each document carries ``idx``: its index rows as ``{p, k, s, c, t, lo, hi}``.
Foundation stage: token equality (``_id``, ``identifier``); the search issue widens it.
"""

from __future__ import annotations

from typing import Any

from ..search.query import Predicate, SearchQuery

# (keys, options) for create_index on the resources collection.
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("rtype", 1), ("idx.p", 1), ("idx.c", 1)], {"name": "idx_token"}),
]


def _predicate(pred: Predicate) -> dict:
    if pred.kind != "token" or pred.op != "eq":
        raise NotImplementedError(f"search on {pred.param} ({pred.kind}:{pred.op}) is not supported yet")
    system, code = pred.values
    match: dict[str, Any] = {"p": pred.param}
    if code is not None:
        match["c"] = code
    if system is not None:
        match["s"] = system or None
    return {"idx": {"$elemMatch": match}}


def compile_filter(query: SearchQuery) -> dict:
    """The MongoDB filter of the whole query."""
    parts: list[dict] = [{"rtype": query.resource_type, "deleted": False}]
    for clause in query.clauses:
        ors = [_predicate(p) for p in clause]
        parts.append(ors[0] if len(ors) == 1 else {"$or": ors})
    return {"$and": parts}


def compile_sort(query: SearchQuery) -> list[tuple[str, int]]:
    return [("_id", 1)]
