"""Index extraction: the search rows of a resource, following the registry's FHIRPath expressions.

Each expression is compiled once per (type, parameter). Simple paths (``Observation.code``,
``(Observation.value as Quantity)``, ``telecom.where(system='email')``) run on a small walker typed
by fhirpathpy's R4 model; anything else runs on fhirpathpy itself. ``index_values_reference`` uses
fhirpathpy for every expression: tests prove both give the same rows on the shared examples.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from .dates import MAX_TS, MIN_TS, DateFormatError, date_range
from .query import IndexRow
from .registry import SearchParam, get_registry, split_union
from .text import normalize
from .units import CANONICAL, UCUM, affine

Typed = tuple[str, Any]  # (FHIR type name, JSON value)

log = logging.getLogger("relais.search")

_PRIMITIVES = {
    "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
    "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid", "integer64",
}  # fmt: skip
_SYSTEM_TYPES = {
    "System.String": "string", "System.Boolean": "boolean", "System.Integer": "integer",
    "System.Decimal": "decimal", "System.Date": "date", "System.DateTime": "dateTime", "System.Time": "time",
}  # fmt: skip
_QUANTITY_TYPES = {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "MoneyQuantity"}

_model_lock = threading.Lock()
_model: dict | None = None


def _r4() -> dict:
    """fhirpathpy's R4 model (type of every element path), loaded on first use."""
    global _model
    if _model is None:
        with _model_lock:
            if _model is None:
                from fhirpathpy.models import models  # noqa: PLC0415 - loads several MB of JSON

                m = models["r4"]
                backbones = set()
                for path in m["path2Type"]:
                    parts = path.split(".")
                    for i in range(2, len(parts)):
                        backbones.add(".".join(parts[:i]))
                m = dict(m)
                m["_backbones"] = backbones
                _model = m
    return _model


def _type_name(name: str) -> str:
    """A type as written in a choice list or ``as``/``ofType`` (``DateTime``) to its FHIR name (``dateTime``)."""
    if name in _SYSTEM_TYPES:
        return _SYSTEM_TYPES[name]
    low = name[:1].lower() + name[1:]
    return low if low in _PRIMITIVES else name


# --- expression rewriting -------------------------------------------------------------------------

_RESOLVE_IS = re.compile(r"\.where\(\s*resolve\(\)\s+is\s+([A-Za-z]+)\s*\)$")
_PAREN_AS = re.compile(r"\(([^()]+?)\s+as\s+([A-Za-z]+)\)")
_TAIL_AS = re.compile(r"^(.+?)\s+as\s+([A-Za-z]+)$")
_DOT_AS = re.compile(r"\.as\(\s*([A-Za-z]+)\s*\)")


def _rewrite(part: str) -> tuple[str, str | None]:
    """One union part made evaluable by fhirpathpy, and the reference type ``resolve() is X`` asked for.

    R4 writes ``(X.value as Quantity)`` over collections, which FHIRPath's ``as`` rejects; ``ofType``
    means what the spec intends. ``resolve()`` needs the target; the reference string names its type.
    """
    part = part.strip()
    ref_type = None
    m = _RESOLVE_IS.search(part)
    if m:
        ref_type = m.group(1)
        part = part[: m.start()]
    part = _PAREN_AS.sub(lambda m: f"{m.group(1).strip()}.ofType({_type_name(m.group(2))})", part)
    m = _TAIL_AS.match(part)
    if m:
        part = f"{m.group(1).strip()}.ofType({_type_name(m.group(2))})"
    part = _DOT_AS.sub(lambda m: f".ofType({_type_name(m.group(1))})", part)
    return part, ref_type


# --- the fast walker -----------------------------------------------------------------------------

_STEP = re.compile(r"([A-Za-z][A-Za-z0-9]*)|ofType\(([A-Za-z]+)\)|where\(([A-Za-z]+)\s*=\s*'([^']*)'\)")


def _split_steps(expr: str) -> list[str] | None:
    steps = []
    depth = 0
    start = 0
    for i, ch in enumerate(expr):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            steps.append(expr[start:i])
            start = i + 1
    steps.append(expr[start:])
    return steps if all(steps) else None


def _compile_fast(expr: str, base_path: str, absolute: bool) -> Callable[[Any], list[Typed]] | None:
    """A plain-Python evaluator of a dotted path with ``ofType``/simple ``where``, or None if out of reach."""
    model = _r4()
    path2type, choices, elsewhere, backbones = (
        model["path2Type"], model["choiceTypePaths"], model["pathsDefinedElsewhere"], model["_backbones"],
    )  # fmt: skip
    steps = _split_steps(expr)
    if not steps:
        return None
    if absolute:
        if steps[0] != base_path:
            return None
        steps = steps[1:]
    # A plan is a list of ("get", [(json key, type, next path)]) or ("where", field, literal) or ("type", T).
    plan: list[tuple] = []
    current: list[tuple[str, str]] = [(base_path, base_path)]  # (type name, model path) of items
    for step in steps:
        m = _STEP.fullmatch(step)
        if not m:
            return None
        name, of_type, w_field, w_lit = m.groups()
        if of_type:
            want = _type_name(of_type)
            current = [c for c in current if c[0] == want]
            if plan and plan[-1][0] == "get":
                # Fold the type test into the lookup: (value as Quantity) reads valueQuantity only.
                plan[-1] = ("get", [k for k in plan[-1][1] if k[1] == want])
            else:
                plan.append(("type", want))
            continue
        if w_field:
            plan.append(("where", w_field, w_lit))
            continue
        if len(current) != 1:
            return None  # several types mid-path: the next step would depend on each
        _, path = current[0]
        full = f"{path}.{name}"
        full = elsewhere.get(full, full)
        keys: list[tuple[str, str, str]] = []
        if full in choices:
            for ct in choices[full]:
                t = _type_name(ct)
                keys.append((name + ct[:1].upper() + ct[1:], t, t))
        elif full in path2type:
            t = _type_name(path2type[full])
            if t in ("Resource", "BackboneElement", "Element"):
                return None  # polymorphic content: leave it to fhirpathpy
            keys.append((name, t, t))
        elif full in backbones:
            keys.append((name, full, full))
        else:
            return None
        plan.append(("get", keys))
        current = [(k[1], k[2]) for k in keys]

    if any(op[0] == "get" and not op[1] for op in plan):
        return lambda data: []
    simple = [op[1][0][:2] for op in plan if op[0] == "get" and len(op[1]) == 1]
    if len(simple) == len(plan) and len(plan) in (1, 2):
        return _simple_path(simple)

    # Most parameters of a type are absent from a given resource: answer those with one dict lookup.
    first_keys = tuple(k[0] for k in plan[0][1]) if plan and plan[0][0] == "get" else ()
    single_key = first_keys[0] if len(first_keys) == 1 else None

    def run(data: Any) -> list[Typed]:
        if single_key is not None:
            if type(data) is dict and single_key not in data:
                return []
        elif first_keys and type(data) is dict and not any(k in data for k in first_keys):
            return []
        items: list[Typed] = [(base_path, data)]
        for op in plan:
            kind = op[0]
            if kind == "get":
                out: list[Typed] = []
                for _t, item in items:
                    if type(item) is not dict:
                        continue
                    for key, t, _p in op[1]:
                        v = item.get(key)
                        if v is None:
                            continue
                        if type(v) is list:
                            out.extend((t, x) for x in v if x is not None)
                        else:
                            out.append((t, v))
                items = out
            elif kind == "type":
                items = [i for i in items if i[0] == op[1]]
            else:
                _, f, lit = op
                items = [i for i in items if type(i[1]) is dict and i[1].get(f) == lit]
            if not items:
                break
        return items

    return run


def _simple_path(steps: list[tuple[str, str]]) -> Callable[[Any], list[Typed]]:
    """Specialised walkers for the most common shapes: ``Type.a`` and ``Type.a.b`` (one key per step)."""
    (key1, t1) = steps[0]
    if len(steps) == 1:

        def one(data: Any) -> list[Typed]:
            v = data.get(key1) if type(data) is dict else None
            if v is None:
                return []
            if type(v) is list:
                return [(t1, x) for x in v if x is not None]
            return [(t1, v)]

        return one
    (key2, t2) = steps[1]

    def two(data: Any) -> list[Typed]:
        v = data.get(key1) if type(data) is dict else None
        if v is None:
            return []
        out: list[Typed] = []
        for item in v if type(v) is list else (v,):
            if type(item) is dict:
                w = item.get(key2)
                if w is None:
                    continue
                if type(w) is list:
                    out.extend((t2, x) for x in w if x is not None)
                else:
                    out.append((t2, w))
        return out

    return two


# --- fhirpathpy --------------------------------------------------------------------------------


def _compile_fhirpath(expr: str, base_path: str, absolute: bool = True) -> Callable[[Any], list[Typed]]:
    """A fhirpathpy evaluator returning typed values (types from the nodes fhirpathpy builds)."""
    from fhirpathpy import apply_parsed_path  # noqa: PLC0415 - antlr import is slow
    from fhirpathpy.engine.nodes import FP_Type, ResourceNode  # noqa: PLC0415
    from fhirpathpy.parser import parse  # noqa: PLC0415

    parsed = parse(expr)
    model = _r4()
    options = {"returnRawData": True}

    def run(data: Any) -> list[Typed]:
        # A whole resource goes in as JSON (fhirpathpy types it); a node inside one needs its path.
        root = data if absolute else ResourceNode.create_node(data, base_path)
        out: list[Typed] = []
        try:
            found = apply_parsed_path(root, parsed, {}, model, options)
        except Exception:  # noqa: BLE001 - a FHIRPath corner case must not fail the write; it loses one value
            log.warning("FHIRPath %r failed on a %s; no index values from it", expr, base_path, exc_info=True)
            return []
        for item in found:
            if isinstance(item, ResourceNode):
                v = item.data
                t = _type_name(item.path) if item.path else None
            else:
                v, t = item, None
            if v is None:
                continue
            if isinstance(v, FP_Type):
                v = str(v)
            if t is None:
                t = {bool: "boolean", int: "integer", float: "decimal", str: "string"}.get(type(v), "string")
            out.append((t, v))
        return out

    return run


class CompiledPath:
    """One parameter expression (a union), evaluable on a resource or on a node of ``base_path``."""

    def __init__(self, expression: str, base_path: str, *, absolute: bool = True, fast: bool = True):
        self.parts: list[tuple[Callable[[Any], list[Typed]], str | None]] = []
        self.fast_parts = 0
        for raw in split_union(expression):
            expr, ref_type = _rewrite(raw)
            fn = _compile_fast(expr, base_path, absolute) if fast else None
            if fn is None:
                fn = _compile_fhirpath(expr, base_path, absolute)
            else:
                self.fast_parts += 1
            self.parts.append((fn, ref_type))

        # The common single, unfiltered part is called directly, without the union loop.
        self.evaluate: Callable[[Any], list[Typed]] = self._union
        if len(self.parts) == 1 and self.parts[0][1] is None:
            self.evaluate = self.parts[0][0]

    def __call__(self, data: Any) -> list[Typed]:
        return self.evaluate(data)

    def _union(self, data: Any) -> list[Typed]:
        out: list[Typed] = []
        for fn, ref_type in self.parts:
            got = fn(data)
            if ref_type is not None:
                got = [g for g in got if _reference_type(g[1]) == ref_type]
            out.extend(got)
        return out


# --- typed values to rows --------------------------------------------------------------------------


def _reference_type(value: Any) -> str | None:
    if type(value) is not dict:
        return None
    ref = value.get("reference")
    if isinstance(ref, str):
        t, _id = split_reference(ref)
        if t:
            return t
    return value.get("type")


_REF = re.compile(r"(?:^|/)([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


def split_reference(ref: str) -> tuple[str | None, str | None]:
    """(type, id) of a relative or absolute literal reference; (None, None) for ``#x``, ``urn:``."""
    m = _REF.search(ref)
    if m:
        return m.group(1), m.group(2)
    return None, None


def _num(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int | float | Decimal):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return None
    return None


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


def _composite_second(kind: str, t: str, v: Any) -> list[tuple[str | None, float | None, float | None, str]]:
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


class _Extractor:
    """Compiled extraction for one parameter of one resource type."""

    def __init__(self, param: SearchParam, fast: bool):
        self.param = param
        self.path = CompiledPath(param.expression, param.base, fast=fast)
        self.fast = fast
        self.make = ROW_MAKERS.get(param.type)
        self._components: dict[str, list[CompiledPath]] = {}

    def _components_for(self, base_path: str) -> list[CompiledPath]:
        comps = self._components.get(base_path)
        if comps is None:
            comps = [
                CompiledPath(c.expression, base_path, absolute=False, fast=self.fast) for c in self.param.components
            ]
            self._components[base_path] = comps
        return comps

    def rows(self, resource: dict) -> list[IndexRow]:
        name = self.param.name
        if self.make is not None:
            out: list[IndexRow] = []
            make = self.make
            for t, v in self.path.evaluate(resource):
                out.extend(make(name, t, v))
            return out
        return self._composite_rows(resource)

    def _composite_rows(self, resource: dict) -> list[IndexRow]:
        comps = self.param.components
        if len(comps) != 2:
            return []
        name = self.param.name
        out: list[IndexRow] = []
        for t, node in self.path.evaluate(resource):
            if type(node) is not dict:
                continue
            first_path, second_path = self._components_for(t)
            firsts = [r for ft, fv in first_path.evaluate(node) for r in ROW_MAKERS[comps[0].kind]("", ft, fv)]
            firsts = [r for r in firsts if r.kind in ("token", "reference", "string", "uri")]
            seconds = [s for st, sv in second_path.evaluate(node) for s in _composite_second(comps[1].kind, st, sv)]
            for f in firsts:
                for text, lo, hi, kind in seconds:
                    out.append(IndexRow(name, kind, f.system, f.code, text, lo, hi))
        return out


_cache_lock = threading.Lock()
_extractors: dict[tuple[str, bool], list[_Extractor]] = {}


def extractors(resource_type: str, fast: bool = True) -> list[_Extractor]:
    """The compiled extractors of a type (built once per type)."""
    key = (resource_type, fast)
    got = _extractors.get(key)
    if got is None:
        params = get_registry().params_for(resource_type)
        got = [_Extractor(p, fast) for p in params.values() if not p.union_of]
        with _cache_lock:
            _extractors[key] = got
    return got


def forget(resource_types: Iterable[str]) -> None:
    """Drop compiled extractors after the registry changed (``Registry.add``)."""
    with _cache_lock:
        types = set(resource_types)
        if types & {"Resource", "DomainResource"}:
            _extractors.clear()
        else:
            for key in [k for k in _extractors if k[0] in types]:
                del _extractors[key]


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
