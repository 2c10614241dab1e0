"""Evaluate the search IR against one resource in memory, over the same rows the stores index.

Subscriptions and rule triggers use this; because it reads ``index_values(resource)``, a resource
matches here exactly when a store search would return it. The comparison rules below are the
reference the SQL and MongoDB compilers follow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .errors import SearchError
from .extract import index_values
from .query import IndexRow, Predicate, SearchQuery
from .units import CANONICAL

Resolve = Callable[[str, str], dict | None]
Find = Callable[[SearchQuery], Iterable[dict]]


# --- value comparisons (shared vocabulary with the store compilers) --------------------------------


def system_matches(want: str | None, got: str | None) -> bool:
    """Token system: None = any, "" = the value has no system."""
    if want is None:
        return True
    if want == "":
        return got is None
    return got == want


def date_matches(op: str, slo: float, shi: float, lo: float, hi: float, now: float | None = None) -> bool:
    """R4 date prefixes between a search range [slo, shi] and a value range [lo, hi] (both inclusive)."""
    if op == "eq":
        return lo >= slo and hi <= shi
    if op == "ne":
        return not (lo >= slo and hi <= shi)
    if op == "gt":
        return hi > shi
    if op == "lt":
        return lo < slo
    if op == "ge":
        return hi > shi or (lo >= slo and hi <= shi)
    if op == "le":
        return lo < slo or (lo >= slo and hi <= shi)
    if op == "sa":
        return lo > shi
    if op == "eb":
        return hi < slo
    if op == "ap":
        tol = ap_date_tolerance(slo, shi, now)
        return lo <= shi + tol and hi >= slo - tol
    raise SearchError(f"unknown prefix {op!r}")


def ap_date_tolerance(slo: float, shi: float, now: float | None = None) -> float:
    """``ap`` on dates: 10% of the distance from now, at least a day (the spec leaves it to the server)."""
    now = time.time() if now is None else now
    return max(0.1 * abs(now - (slo + shi) / 2), 86400.0)


def number_matches(op: str, value: float, low: float, high: float, lo: float, hi: float) -> bool:
    """R4 number/quantity prefixes: search ``value`` with implicit range [low, high); stored range [lo, hi]."""
    if op == "eq":
        return lo >= low and hi < high
    if op == "ne":
        return not (lo >= low and hi < high)
    if op in ("gt", "sa"):
        return lo > value if op == "sa" else hi > value
    if op in ("lt", "eb"):
        return hi < value if op == "eb" else lo < value
    if op == "ge":
        return hi >= value
    if op == "le":
        return lo <= value
    if op == "ap":
        tol = ap_number_tolerance(value, low, high)
        return lo <= value + tol and hi >= value - tol
    raise SearchError(f"unknown prefix {op!r}")


def ap_number_tolerance(value: float, low: float, high: float) -> float:
    """``ap`` on numbers: 10% of the value, at least the value's own precision."""
    return max(abs(value) * 0.1, (high - low) / 2)


def text_word_match(query: str, text: str | None) -> bool:
    """``:text`` on tokens: the normalised query starts the text or one of its words."""
    return text is not None and (text.startswith(query) or f" {query}" in text)


def unit_matches(system: str | None, code: str | None, row: IndexRow) -> bool:
    """Quantity unit: with a system, system and code must match; without, code or human unit may."""
    if system is not None and row.system != system:
        return False
    if code is None:
        return True
    if system is not None:
        return row.code == code
    return row.code == code or row.text == code


def composite_unit_matches(system: str | None, code: str | None, text: str | None) -> bool:
    """A composite's quantity unit, stored as ``system|code``."""
    if text is None:
        return system is None and code is None
    if system is not None and code is not None:
        return text == f"{system}|{code}"
    if system is not None:
        return text.startswith(f"{system}|")
    if code is not None:
        return text.endswith(f"|{code}")
    return True


def composite_token_matches(system: str | None, code: str | None, text: str | None) -> bool:
    """A composite's token second part, stored as ``system|code``."""
    if text is None:
        return False
    if code is None:
        return system is None or text.startswith(f"{system}|")
    if system is None:
        return text.endswith(f"|{code}")
    return text == f"{system}|{code}"


# --- predicates ----------------------------------------------------------------------------------


class _Context:
    def __init__(
        self,
        resource: dict,
        resolve: Resolve | None,
        find: Find | None,
        now: float | None,
        rows: Iterable[IndexRow] | None,
    ):
        self.resource = resource
        self.resolve = resolve
        self.find = find
        self.now = now
        self.by_param: dict[str, list[IndexRow]] = {}
        for r in index_values(resource) if rows is None else rows:
            self.by_param.setdefault(r.param, []).append(r)


def _token_eq(values: tuple, rows: list[IndexRow]) -> bool:
    system, code = values
    return any(
        r.kind == "token"
        and (code is None or r.code == code)
        and system_matches(system, r.system)
        and (code is not None or r.code is not None or system is not None)
        for r in rows
    )


def _predicate(p: Predicate, ctx: _Context) -> bool:
    rows = ctx.by_param.get(p.param, [])
    op = p.op
    if op == "missing":
        return (not rows) == p.values[0]
    kind = p.kind
    if kind == "token":
        if op == "eq":
            return _token_eq(p.values, rows)
        if op == "not":
            return not _token_eq(p.values, rows)
        if op == "text":
            return any(r.kind == "token" and text_word_match(p.values[0], r.text) for r in rows)
        if op == "in":
            system, codes = p.values
            return any(r.kind == "token" and r.code in codes and system_matches(system, r.system) for r in rows)
        if op == "of-type":
            tsys, tcode, value = p.values
            want = f"{tsys or ''}|{tcode}"
            return any(r.kind == "of-type" and r.code == value and r.text == want for r in rows)
    elif kind == "string":
        q = p.values[0]
        if op == "eq":
            return any(r.code is not None and r.code.startswith(q) for r in rows)
        if op == "contains":
            return any(r.code is not None and q in r.code for r in rows)
        if op == "exact":
            return any(r.text == q for r in rows)
    elif kind == "date":
        slo, shi = p.values
        return any(r.low is not None and date_matches(op, slo, shi, r.low, r.high, ctx.now) for r in rows)
    elif kind == "number":
        value, low, high = p.values
        return any(r.low is not None and number_matches(op, value, low, high, r.low, r.high) for r in rows)
    elif kind == "quantity":
        value, low, high, system, code = p.values
        row_kind = "ucum" if system == CANONICAL else "quantity"
        return any(
            r.kind == row_kind
            and r.low is not None
            and unit_matches(system, code, r)
            and number_matches(op, value, low, high, r.low, r.high)
            for r in rows
        )
    elif kind == "uri":
        v = p.values[0]
        if op == "eq":
            return any(r.code == v for r in rows)
        if op == "above":
            return any(r.code is not None and v.startswith(r.code) for r in rows)
        if op == "below":
            return any(r.code is not None and r.code.startswith(v) for r in rows)
    elif kind == "reference":
        if op == "eq":
            return any(r.kind == "reference" and reference_matches(p.values, r) for r in rows)
        if op == "identifier":
            system, code = p.values
            return any(
                r.kind == "identifier" and (code is None or r.code == code) and system_matches(system, r.system)
                for r in rows
            )
        if op == "in":
            rtype, ids = p.values
            return any(r.kind == "reference" and r.system == rtype and r.code in ids for r in rows)
        if op == "chain":
            return _chain(p, rows, ctx)
    elif kind == "composite":
        row_kind = composite_row_kind(p)
        return any(r.kind == row_kind and composite_matches(p, r, ctx.now) for r in rows)
    elif kind == "has":
        return _has(p, ctx)
    raise SearchError(f"cannot evaluate {p.param} ({kind}:{op})")


def reference_matches(values: tuple, r: IndexRow) -> bool:
    """Reference equality: (type, id) of the target, or the absolute URL as written."""
    rtype, rid, url = values
    if url is not None:
        if r.text == url:
            return True
        # An absolute URL naming Type/id also finds the local reference (the server's own base or not).
        return rid is not None and r.code == rid and r.system == rtype
    return r.code == rid and (rtype is None or r.system == rtype)


def composite_row_kind(p: Predicate) -> str:
    """Composite rows with a UCUM-canonical quantity are kept apart (kind composite-ucum)."""
    _first, second_kind, second = p.values
    return "composite-ucum" if second_kind == "quantity" and second[3] == CANONICAL else "composite"


def composite_matches(p: Predicate, r: IndexRow, now: float | None = None) -> bool:
    (system, code), second_kind, second = p.values
    if code is not None and r.code != code:
        return False
    if not system_matches(system, r.system):
        return False
    if second_kind == "quantity":
        value, low, high, usys, ucode = second
        return (
            r.low is not None
            and composite_unit_matches(usys, ucode, r.text)
            and number_matches(p.op, value, low, high, r.low, r.high)
        )
    if second_kind == "number":
        value, low, high = second
        return r.low is not None and number_matches(p.op, value, low, high, r.low, r.high)
    if second_kind == "date":
        return r.low is not None and date_matches(p.op, second[0], second[1], r.low, r.high, now)
    if second_kind == "token":
        return composite_token_matches(second[0], second[1], r.text)
    if second_kind == "string":
        return r.text is not None and r.text.startswith(second[0])
    return False


def _chain(p: Predicate, rows: list[IndexRow], ctx: _Context) -> bool:
    if ctx.resolve is None or p.chain is None:
        # Without the store there is nothing to follow; a chain then matches nothing.
        return False
    target = p.values[0]
    for r in rows:
        if r.kind == "reference" and r.system == target and r.code:
            other = ctx.resolve(target, r.code)
            if other is not None and matches(p.chain, other, ctx.resolve, find=ctx.find, now=ctx.now):
                return True
    return False


def _has(p: Predicate, ctx: _Context) -> bool:
    if ctx.find is None or p.chain is None:
        return False
    source, ref_param = p.values
    me = (ctx.resource.get("resourceType"), ctx.resource.get("id"), None)
    pointing = Predicate(ref_param, "reference", "eq", me)
    inner = SearchQuery(source, clauses=(*p.chain.clauses, (pointing,)), count=1)
    return any(True for _ in ctx.find(inner))


def matches(
    query: SearchQuery,
    resource: dict,
    resolve: Resolve | None = None,
    *,
    find: Find | None = None,
    now: float | None = None,
    rows: Iterable[IndexRow] | None = None,
) -> bool:
    """Whether ``resource`` satisfies every clause of ``query``.

    ``resolve(type, id)`` lets chains follow references; ``find(query)`` lets ``_has`` look for
    resources pointing at this one. Without them, chains and ``_has`` match nothing. ``rows``
    (``index_values(resource)``, computed once) spares re-extraction when testing many queries.
    """
    if resource.get("resourceType") != query.resource_type:
        return False
    ctx = _Context(resource, resolve, find, now, rows)
    return all(any(_predicate(p, ctx) for p in clause) for clause in query.clauses)
