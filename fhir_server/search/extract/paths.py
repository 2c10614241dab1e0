"""Compiled search parameter expressions: a FHIRPath union made callable on a resource or a node.

Simple paths (``Observation.code``, ``(Observation.value as Quantity)``, ``telecom.where(system='email')``)
run on a small walker typed by fhirpathpy's R4 model; anything else runs on fhirpathpy itself. Each
callable returns ``(FHIR type name, JSON value)`` pairs, which ``rows`` turns into index rows.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from ..references import reference_type
from ..registry import split_union

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

_PYTHON_TYPES = {bool: "boolean", int: "integer", float: "decimal", str: "string"}

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
                # a float subclass is a decimal too (fhirjson.FHIRDecimal keeps the text it was written with)
                t = _PYTHON_TYPES.get(type(v)) or ("decimal" if isinstance(v, float) else "string")
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
                got = [g for g in got if reference_type(g[1]) == ref_type]
            out.extend(got)
        return out
