"""Compile the search IR to a MongoDB filter over current-version documents.

Each document carries ``idx``: its index rows as ``{p, k, s, c, t, lo, hi}``; a predicate is one
``$elemMatch`` on it, so one row must satisfy all of a predicate's conditions (as in SQL). The
comparison rules are those of ``fhir_server.search.matcher``. A find() cannot join, so chains and
``_has`` run their inner queries first (``search``) and are inlined as id lists.
"""

from __future__ import annotations

import re
from typing import Any

from ..search.errors import SearchError
from ..search.matcher import ap_date_tolerance, ap_number_tolerance, composite_row_kind
from ..search.query import Predicate, SearchQuery, SortKey
from ..search.resolve import has_chains, inline_chains
from ..search.text import normalize
from ..search.units import CANONICAL
from . import mongodb_decimals
from .base import SearchResult

# (keys, options) for create_index on the resources collection. Fields of one array may share
# a compound multikey index, so token/reference lookups and ranges both start from an index.
INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("rtype", 1), ("idx.p", 1), ("idx.c", 1)], {"name": "idx_token"}),
    ([("rtype", 1), ("idx.p", 1), ("idx.lo", 1)], {"name": "idx_range"}),
    ([("rtype", 1), ("deleted", 1), ("last_updated", 1)], {"name": "by_updated"}),
]

MAX_CHAR = "\U0010ffff"

# Inner queries of chains and _has are capped: an unbounded join would read the whole database.
MAX_INNER_IDS = 10_000


class ChainsNeedResolution(NotImplementedError):
    """compile_filter met a chain or _has: run ``search`` (or ``inline_chains``) instead."""


def _prefix(value: str) -> dict:
    return {"$gte": value, "$lt": value + MAX_CHAR}


def _system(match: dict, system: str | None) -> None:
    if system is not None:
        match["s"] = system or None


def _date(op: str, slo: float, shi: float) -> dict:
    inside = {"lo": {"$gte": slo}, "hi": {"$lte": shi}}
    if op == "eq":
        return inside
    if op == "ne":
        return {"$nor": [inside]}
    if op == "gt":
        return {"hi": {"$gt": shi}}
    if op == "lt":
        return {"lo": {"$lt": slo}}
    if op == "ge":
        return {"$or": [{"hi": {"$gt": shi}}, inside]}
    if op == "le":
        return {"$or": [{"lo": {"$lt": slo}}, inside]}
    if op == "sa":
        return {"lo": {"$gt": shi}}
    if op == "eb":
        return {"hi": {"$lt": slo}}
    if op == "ap":
        tol = ap_date_tolerance(slo, shi)
        return {"lo": {"$lte": shi + tol}, "hi": {"$gte": slo - tol}}
    raise SearchError(f"unknown prefix {op!r}")


def _number(op: str, value: float, low: float, high: float) -> dict:
    inside = {"lo": {"$gte": low}, "hi": {"$lt": high}}
    simple = {"gt": ("hi", "$gt"), "sa": ("lo", "$gt"), "lt": ("lo", "$lt"), "eb": ("hi", "$lt"),
              "ge": ("hi", "$gte"), "le": ("lo", "$lte")}  # fmt: skip
    if op == "eq":
        return inside
    if op == "ne":
        return {"$nor": [inside]}
    if op in simple:
        field, cmp = simple[op]
        return {field: {cmp: value}}
    if op == "ap":
        tol = ap_number_tolerance(value, low, high)
        return {"lo": {"$lte": value + tol}, "hi": {"$gte": value - tol}}
    raise SearchError(f"unknown prefix {op!r}")


def _and(*parts: dict) -> dict:
    """Merge conditions on one idx row; ``$or``/``$nor`` from several parts go under ``$and``."""
    out: dict = {}
    extra: list[dict] = []
    for part in parts:
        for k, v in part.items():
            if k in out or k in ("$or", "$nor"):
                extra.append({k: v})
            else:
                out[k] = v
    if extra:
        out["$and"] = extra
    return out


def _starts(text: str) -> dict:
    return {"$regex": "^" + re.escape(text)}


def _ends(text: str) -> dict:
    return {"$regex": re.escape(text) + "$"}


def _composite_second(p: Predicate) -> dict:
    _first, kind, second = p.values
    if kind == "quantity":
        value, low, high, usys, ucode = second
        cond = _number(p.op, value, low, high)
        if usys is not None and ucode is not None:
            return _and(cond, {"t": f"{usys}|{ucode}"})
        if usys is not None:
            return _and(cond, {"t": _starts(f"{usys}|")})
        if ucode is not None:
            return _and(cond, {"t": _ends(f"|{ucode}")})
        return cond
    if kind == "number":
        value, low, high = second
        return _number(p.op, value, low, high)
    if kind == "date":
        return _date(p.op, second[0], second[1])
    if kind == "token":
        system, code = second
        if code is None:
            return {"t": {"$ne": None}} if system is None else {"t": _starts(f"{system}|")}
        if system is None:
            return {"t": _ends(f"|{code}")}
        return {"t": f"{system}|{code}"}
    if kind == "string":
        return {"t": _starts(second[0])}
    raise SearchError(f"composite with a {kind} part is not supported")


def _row(p: Predicate) -> dict:
    """The conditions one idx row must meet for ``p`` (``p`` itself, not its negation)."""
    kind, op = p.kind, p.op
    m: dict = {"p": p.param}
    if kind == "token":
        if op in ("eq", "not"):
            system, code = p.values
            m["k"] = "token"
            if code is not None:
                m["c"] = code
            _system(m, system)
            return m
        if op == "in":
            system, codes = p.values
            m.update(k="token", c={"$in": list(codes)})
            _system(m, system)
            return m
        if op == "text":
            q = re.escape(p.values[0])
            m.update(k="token", t={"$regex": f"^{q}|\\s{q}"})
            return m
        if op == "of-type":
            tsys, tcode, value = p.values
            m.update(k="of-type", c=value, t=f"{tsys or ''}|{tcode}")
            return m
    elif kind == "string":
        q = p.values[0]
        if op == "eq":
            m["c"] = _prefix(q)
            return m
        if op == "contains":
            m["c"] = {"$regex": re.escape(q)}
            return m
        if op == "exact":
            m.update(c=normalize(q), t=q)  # the normalised form leads the index to the exact one
            return m
    elif kind == "date":
        return _and(m, {"lo": {"$ne": None}}, _date(op, p.values[0], p.values[1]))
    elif kind == "number":
        value, low, high = p.values
        return _and(m, {"lo": {"$ne": None}}, _number(op, value, low, high))
    elif kind == "quantity":
        value, low, high, system, code = p.values
        unit: dict = {}
        if system is not None:
            unit["s"] = system
        if code is not None:
            if system is not None:
                unit["c"] = code
            else:
                unit["$or"] = [{"c": code}, {"t": code}]
        row_kind = "ucum" if system == CANONICAL else "quantity"
        return _and(m, {"k": row_kind, "lo": {"$ne": None}}, _number(op, value, low, high), unit)
    elif kind == "uri":
        v = p.values[0]
        if op == "eq":
            m["c"] = v
            return m
        if op == "below":
            m["c"] = _prefix(v)
            return m
        if op == "above":
            # The stored URI must be a prefix of v: there are only len(v) candidates.
            m["c"] = {"$in": [v[:i] for i in range(1, len(v) + 1)]}
            return m
    elif kind == "reference":
        m["k"] = "reference"
        if op == "eq":
            rtype, rid, url = p.values
            if url is not None:
                if rid is None:
                    m["t"] = url
                    return m
                m["$or"] = [{"t": url}, {"c": rid, "s": rtype}]
                return m
            m["c"] = rid
            if rtype is not None:
                m["s"] = rtype
            return m
        if op == "in":
            rtype, ids = p.values
            m.update(s=rtype, c={"$in": list(ids)})
            return m
        if op == "identifier":
            system, code = p.values
            m["k"] = "identifier"
            if code is not None:
                m["c"] = code
            _system(m, system)
            return m
    elif kind == "composite":
        (system, code), _kind, _second = p.values
        m["k"] = composite_row_kind(p)
        if code is not None:
            m["c"] = code
        _system(m, system)
        return _and(m, _composite_second(p))
    raise SearchError(f"search on {p.param} ({kind}:{op}) is not supported")


def _predicate(p: Predicate) -> dict:
    if p.chain is not None:
        raise ChainsNeedResolution(f"{p.param}: chained search needs its inner query run first")
    if p.op == "missing":
        return {"idx.p": {"$ne": p.param}} if p.values[0] else {"idx.p": p.param}
    if p.kind == "token" and p.op == "not":
        return {"idx": {"$not": {"$elemMatch": _row(p)}}}
    if p.kind == "token" and p.op == "in" and p.param == "_id":
        return {"rid": {"$in": list(p.values[1])}}
    return {"idx": {"$elemMatch": _row(p)}}


def compile_filter(query: SearchQuery) -> dict:
    """The MongoDB filter of the whole query (chains must have been inlined, see ``search``)."""
    parts: list[dict] = [{"rtype": query.resource_type, "deleted": False}]
    for clause in query.clauses:
        ors = [_predicate(p) for p in clause]
        parts.append(ors[0] if len(ors) == 1 else {"$or": ors})
    return {"$and": parts}


_NATIVE_SORT = {"_id": "rid", "_lastUpdated": "last_updated"}


def compile_sort(query: SearchQuery) -> list[tuple[str, int]]:
    """A find() sort; only top-level fields sort natively (``search`` handles the others)."""
    keys = []
    for name, desc, _kind in query.sort:
        if name not in _NATIVE_SORT:
            raise NotImplementedError(f"sorting by {name!r} needs fhir_server.store.mongodb_search.search")
        keys.append((_NATIVE_SORT[name], -1 if desc else 1))
    return [*keys, ("_id", 1)]


def _sort_key(doc: dict, sort: tuple[SortKey, ...]) -> tuple:
    key: list = []
    for name, desc, kind in sort:
        if name in _NATIVE_SORT:
            v = doc.get(_NATIVE_SORT[name])
        else:
            numeric = kind in ("date", "number", "quantity")
            field = ("hi" if desc else "lo") if numeric else "c"
            values = [i.get(field) for i in doc.get("idx") or () if i.get("p") == name and i.get(field) is not None]
            v = (max(values) if desc else min(values)) if values else None
        # Missing values last in both directions; descending handled by a wrapper that inverts order.
        key.append((v is None, _Desc(v) if desc and v is not None else v))
    key.append(doc["_id"])
    return tuple(key)


class _Desc:
    """Inverts comparison for descending keys of any comparable type."""

    __slots__ = ("v",)

    def __init__(self, v: Any):
        self.v = v

    def __lt__(self, other: _Desc) -> bool:
        return other.v < self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and other.v == self.v


def _all_ids(collection: Any, query: SearchQuery, session: Any) -> list[str]:
    docs = collection.find(compile_filter(query), {"rid": 1}, session=session).limit(MAX_INNER_IDS + 1)
    ids = [d["rid"] for d in docs]
    if len(ids) > MAX_INNER_IDS:
        raise SearchError(f"a chained or _has criterion matches more than {MAX_INNER_IDS} resources: refine it")
    return ids


def search(collection: Any, query: SearchQuery, session: Any = None) -> SearchResult:
    """One page of ids and the total, with chains, _has and any _sort (what MongoStore._search should call)."""
    if has_chains(query):

        def read_many(rtype: str, ids: list[str]) -> list[dict]:
            keys = [f"{rtype}/{i}" for i in ids]
            found = collection.find({"_id": {"$in": keys}}, {"resource": 1, "decimals": 1}, session=session)
            return [mongodb_decimals.decoded(d["resource"], d.get("decimals")) for d in found]

        query = inline_chains(query, lambda q: _all_ids(collection, q, session), read_many)
    flt = compile_filter(query)
    if all(key.param in _NATIVE_SORT for key in query.sort):
        cursor = collection.find(flt, {"rid": 1}, session=session).sort(compile_sort(query))
        ids = [d["rid"] for d in cursor.skip(query.offset).limit(query.count)] if query.count else []
    else:
        # find() cannot order by one parameter's values inside idx: sort the matches here.
        projection = {"rid": 1, "last_updated": 1, "idx": 1}
        docs = list(collection.find(flt, projection, session=session))
        docs.sort(key=lambda d: _sort_key(d, query.sort))
        ids = [d["rid"] for d in docs[query.offset : query.offset + query.count]]
    total = None
    if query.total != "none":
        if query.offset == 0 and len(ids) < query.count:
            total = len(ids)
        else:
            total = collection.count_documents(flt, session=session)
    return SearchResult(ids, total)
