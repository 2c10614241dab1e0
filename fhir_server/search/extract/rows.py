"""Typed values to index rows: one maker per parameter kind, and the second part of a composite."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from ..dates import MAX_TS, MIN_TS, DateFormatError, date_range
from ..query import IndexRow
from ..references import split_reference
from ..text import normalize
from ..units import CANONICAL, UCUM, affine


def _num(v: Any) -> float | None:
    """A finite double, or None: a value beyond a double (10**400, 1e400, NaN) has no place in the index."""
    if isinstance(v, bool) or not isinstance(v, int | float | Decimal | str):
        return None
    try:
        n = float(v)
    except (ValueError, OverflowError):  # float(10**400) overflows, float("x") is no number
        return None
    return n if math.isfinite(n) else None


def _ntext(*values: Any) -> str | None:
    for v in values:
        if isinstance(v, str) and v:
            return normalize(v)
    return None


def token_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    """Token rows of one typed value; ``text`` holds normalised display text for ``:text``."""
    if type(v) is dict:
        if t == "CodeableConcept" or (t not in ("Coding", "Identifier", "ContactPoint") and "coding" in v):
            cc_text = v.get("text")
            codings = [c for c in v.get("coding") or () if type(c) is dict]
            # Each coding row carries its display; CodeableConcept.text rides on a row without display,
            # or on a row of its own when every coding has a display of its own.
            norm_text = normalize(cc_text) if isinstance(cc_text, str) and cc_text else None
            text_used = norm_text is None
            for c in codings:
                if c.get("code") is None and c.get("system") is None:
                    continue
                display = _ntext(c.get("display"))
                if display is None or display == norm_text:
                    display = norm_text
                    text_used = True
                yield IndexRow(name, "token", c.get("system"), c.get("code"), display)
            if not text_used:
                yield IndexRow(name, "token", None, None, norm_text)
        elif t == "Identifier":
            system, value = v.get("system"), v.get("value")
            type_cc = v.get("type") if type(v.get("type")) is dict else {}
            if system is not None or value is not None:
                yield IndexRow(name, "token", system, value, _ntext(type_cc.get("text")))
                # :of-type rows repeat system and value, so a plain token match on them is never wrong.
                for c in type_cc.get("coding") or ():
                    if type(c) is dict and c.get("code"):
                        yield IndexRow(name, "of-type", system, value, f"{c.get('system') or ''}|{c['code']}")
        elif t == "ContactPoint":
            if v.get("value") is not None:
                yield IndexRow(name, "token", v.get("system"), v.get("value"))
        elif t == "Coding" or "code" in v:
            if v.get("code") is not None or v.get("system") is not None:
                yield IndexRow(name, "token", v.get("system"), v.get("code"), _ntext(v.get("display"), v.get("unit")))
        elif t == "Reference" and isinstance(v.get("reference"), str):
            yield IndexRow(name, "token", None, v["reference"])
    elif isinstance(v, bool):
        yield IndexRow(name, "token", None, "true" if v else "false")
    elif isinstance(v, str):
        yield IndexRow(name, "token", None, v)
    elif isinstance(v, int | float | Decimal):
        yield IndexRow(name, "token", None, str(v))


_NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
_ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


def string_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    """String rows: ``code`` normalised for matching, ``text`` as written."""
    if isinstance(v, str):
        yield IndexRow(name, "string", None, normalize(v), v)
    elif type(v) is dict:
        parts = _NAME_PARTS if t == "HumanName" else _ADDRESS_PARTS if t == "Address" else ()
        if not parts and t not in ("HumanName", "Address"):
            parts = ("text", "value", "display")
        for p in parts:
            x = v.get(p)
            for s in x if type(x) is list else (x,):
                if isinstance(s, str) and s:
                    yield IndexRow(name, "string", None, normalize(s), s)
        if t == "HumanName" and not v.get("text"):
            # "name=jean dupont" should find Jean Dupont: the whole name, given names first.
            given = [g for g in v.get("given") or () if isinstance(g, str) and g]
            family = v.get("family")
            if given and isinstance(family, str) and family:
                whole = " ".join([*given, family])
                yield IndexRow(name, "string", None, normalize(whole), whole)


def _range(s: Any) -> tuple[float, float] | None:
    if not isinstance(s, str):
        return None
    try:
        return date_range(s)
    except DateFormatError:
        return None


def date_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    """Date rows: inclusive [low, high] epoch seconds; an open Period end is unbounded."""
    if isinstance(v, str):
        r = _range(v)
        if r:
            yield IndexRow(name, "date", low=r[0], high=r[1])
    elif type(v) is dict:
        if t == "Timing" or "event" in v or "repeat" in v:
            for e in v.get("event") or ():
                r = _range(e)
                if r:
                    yield IndexRow(name, "date", low=r[0], high=r[1])
            bounds = (v.get("repeat") or {}).get("boundsPeriod")
            if type(bounds) is dict:
                yield from date_rows(name, "Period", bounds)
        elif "start" in v or "end" in v:
            start, end = _range(v.get("start")), _range(v.get("end"))
            if start or end:
                yield IndexRow(name, "date", low=start[0] if start else MIN_TS, high=end[1] if end else MAX_TS)


def reference_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    """Reference rows: system = target type, code = id, text = the reference as written."""
    if type(v) is dict:
        ref = v.get("reference")
        if isinstance(ref, str) and ref:
            rtype, rid = split_reference(ref)
            yield IndexRow(name, "reference", rtype or v.get("type"), rid, ref)
        ident = v.get("identifier")
        if type(ident) is dict and (ident.get("value") is not None or ident.get("system") is not None):
            yield IndexRow(name, "identifier", ident.get("system"), ident.get("value"))
    elif isinstance(v, str) and v:
        # canonical / uri used as a reference: the URL, and its tail when it names Type/id.
        rtype, rid = split_reference(v.split("|")[0])
        yield IndexRow(name, "reference", rtype, rid, v)


def quantity_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    """Quantity rows: low = high = value, system and code of the unit (``text`` keeps the human unit)."""
    if type(v) is not dict:
        n = _num(v)
        if n is not None:
            yield IndexRow(name, "quantity", low=n, high=n)
        return
    if t == "Range" or "low" in v or "high" in v:
        lo, hi = v.get("low") or {}, v.get("high") or {}
        lo_v, hi_v = _num(lo.get("value")), _num(hi.get("value"))
        if lo_v is not None or hi_v is not None:
            unit = lo if lo_v is not None else hi
            low = lo_v if lo_v is not None else float("-inf")
            high = hi_v if hi_v is not None else float("inf")
            yield IndexRow(name, "quantity", unit.get("system"), unit.get("code"), unit.get("unit"), low, high)
            yield from _ucum_row(name, unit.get("system"), unit.get("code"), low, high)
        return
    if t == "SampledData":
        return
    value = _num(v.get("value"))
    if value is None:
        return
    if t == "Money" or ("currency" in v and "code" not in v):
        yield IndexRow(name, "quantity", "urn:iso:std:iso:4217", v.get("currency"), None, value, value)
        return
    yield IndexRow(name, "quantity", v.get("system"), v.get("code"), v.get("unit"), value, value)
    yield from _ucum_row(name, v.get("system"), v.get("code"), value, value)


def _ucum_row(name: str, system: Any, code: Any, low: float, high: float) -> Iterable[IndexRow]:
    """The same quantity in SI base units (kind ``ucum``), so a search in g finds kg."""
    if system != UCUM or not isinstance(code, str):
        return
    conv = affine(code)
    if conv is None:
        return
    a, b, unit = conv
    yield IndexRow(name, "ucum", CANONICAL, unit, None, a * low + b, a * high + b)


def number_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    n = _num(v)
    if n is not None:
        yield IndexRow(name, "number", low=n, high=n)


def uri_rows(name: str, t: str, v: Any) -> Iterable[IndexRow]:
    if isinstance(v, str) and v:
        yield IndexRow(name, "uri", code=v)


ROW_MAKERS: dict[str, Callable[[str, str, Any], Iterable[IndexRow]]] = {
    "token": token_rows,
    "string": string_rows,
    "date": date_rows,
    "reference": reference_rows,
    "quantity": quantity_rows,
    "number": number_rows,
    "uri": uri_rows,
}


def composite_second(kind: str, t: str, v: Any) -> list[tuple[str | None, float | None, float | None, str]]:
    """(text, low, high, row kind) of a composite's second component."""
    out: list[tuple[str | None, float | None, float | None, str]] = []
    for r in ROW_MAKERS[kind]("", t, v):
        if r.kind == "ucum":
            out.append((f"{r.system}|{r.code}", r.low, r.high, "composite-ucum"))
            continue
        if r.kind not in ("token", "string", "date", "reference", "quantity", "number", "uri"):
            continue
        if kind == "quantity":
            out.append((f"{r.system or ''}|{r.code or r.text or ''}", r.low, r.high, "composite"))
        elif kind == "token" or kind == "reference":
            if r.code is not None:
                out.append((f"{r.system or ''}|{r.code}", None, None, "composite"))
        elif kind in ("string", "uri"):
            out.append((r.code, None, None, "composite"))
        else:
            out.append((None, r.low, r.high, "composite"))
    return out
