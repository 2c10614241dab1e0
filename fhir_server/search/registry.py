"""The search parameter registry: the R4 SearchParameter definitions, as data.

``search-parameters.json`` next to this file is an unmodified copy of ``Bundle-searchParams.json``
from the HL7 FHIR R4 4.0.1 package ``hl7.fhir.r4.examples`` (CC0-1.0). Each definition's FHIRPath
expression is a union over several base types (``Patient.name | Practitioner.name``); the registry
keeps, per base type, only the union parts that start with that type.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

SPEC_FILE = Path(__file__).with_name("search-parameters.json")

# Parameters every resource type has, whatever the bundle says about their base.
COMMON_BASES = ("Resource", "DomainResource")

# Kinds the engine indexes; "special" (Location near) and expression-less ones (_text, _content) are not.
SUPPORTED_TYPES = {"token", "string", "date", "reference", "quantity", "number", "uri", "composite"}


@dataclass(frozen=True)
class Component:
    """One part of a composite parameter: its kind and its expression relative to the composite's node."""

    definition: str
    kind: str
    expression: str


@dataclass(frozen=True)
class SearchParam:
    """One search parameter as it applies to one resource type."""

    name: str
    type: str
    expression: str  # FHIRPath for this base type only
    base: str
    url: str = ""
    targets: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    # Other parameters of the type whose values together are exactly this one's (Observation's combo-*):
    # it has no index rows of its own, and the parser searches those parameters instead.
    union_of: tuple[str, ...] = ()


def split_union(expression: str) -> list[str]:
    """Top-level parts of a FHIRPath union (``a | (b as X) | c``), ignoring bars inside parens or quotes."""
    parts: list[str] = []
    depth = 0
    quote = False
    start = 0
    for i, ch in enumerate(expression):
        if ch == "'" and (i == 0 or expression[i - 1] != "\\"):
            quote = not quote
        elif quote:
            continue
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append(expression[start:i].strip())
            start = i + 1
    parts.append(expression[start:].strip())
    return [p for p in parts if p]


_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{0,63}$")
_LEADING_TYPE = re.compile(r"^\(*\s*([A-Z][A-Za-z]*)\b")


def part_base(part: str) -> str | None:
    """The resource type a union part starts from (``(DeviceRequest.code as X)`` -> DeviceRequest)."""
    m = _LEADING_TYPE.match(part)
    return m.group(1) if m else None


def expression_for(expression: str, base: str) -> str:
    """The union parts of ``expression`` that apply to ``base``, joined again; common bases are renamed."""
    parts = []
    for part in split_union(expression):
        start = part_base(part)
        if start == base:
            parts.append(part)
        elif start in COMMON_BASES:
            parts.append(re.sub(r"^(\(*\s*)" + start + r"\b", lambda m: m.group(1) + base, part))
    return " | ".join(parts)


class Registry:
    """Search parameters per resource type, from the R4 bundle plus any added at run time."""

    def __init__(self, definitions: list[dict]):
        self._lock = threading.Lock()
        self._by_url: dict[str, dict] = {}
        self._by_type: dict[str, dict[str, dict]] = {}  # type -> code -> raw definition
        self._common: dict[str, dict] = {}
        self._built: dict[str, dict[str, SearchParam]] = {}
        self._listeners: list[Callable[[Sequence[str]], None]] = []
        # Only the specification's own parameters are made aliases of one another: a custom definition
        # keeps its rows, so what is stored never depends on which other custom ones a process knows.
        self._spec = list(definitions)
        self._spec_ids = {id(d) for d in self._spec}
        for d in definitions:
            self._file(d)

    def _file(self, d: dict) -> None:
        if d.get("url"):
            self._by_url[d["url"]] = d
        for base in d.get("base") or ():
            if base in COMMON_BASES:
                self._common[d["code"]] = d
            else:
                self._by_type.setdefault(base, {})[d["code"]] = d

    def on_change(self, listener: Callable[[Sequence[str]], None]) -> None:
        """Call ``listener(base types)`` after each ``add``: caches built from the definitions (compiled
        extraction) learn that theirs are stale without the registry knowing them."""
        self._listeners.append(listener)

    def resource_types(self) -> list[str]:
        """Types with at least one specific search parameter."""
        return sorted(self._by_type)

    def params_for(self, resource_type: str) -> dict[str, SearchParam]:
        """Supported parameters of ``resource_type`` (built on first use, then cached)."""
        built = self._built.get(resource_type)
        if built is None:
            if not _TYPE_NAME.match(resource_type):
                return {}
            with self._lock:
                built = self._build(resource_type)
                # Only known types are cached: a client's made-up names must not grow the cache.
                if resource_type in self._by_type:
                    self._built[resource_type] = built
        return built

    def get(self, resource_type: str, name: str) -> SearchParam | None:
        return self.params_for(resource_type).get(name)

    def _build(self, resource_type: str) -> dict[str, SearchParam]:
        out: dict[str, SearchParam] = {}
        defs = {**self._common, **self._by_type.get(resource_type, {})}
        for code, d in defs.items():
            p = self._param(d, resource_type)
            if p is not None:
                out[code] = p
        spec = {code: p for code, p in out.items() if id(defs[code]) in self._spec_ids}
        twins = {code: _twin(p, spec) for code, p in spec.items()}
        # A union's parts must have rows of their own: parameters that are twins of another are not parts.
        singles = {code: p for code, p in spec.items() if not twins[code]}
        for code, p in spec.items():
            parts = twins[code] or _union_parts(p, singles)
            if parts:
                out[code] = dataclasses.replace(p, union_of=parts)
        return out

    def _param(self, d: dict, base: str) -> SearchParam | None:
        kind = d.get("type")
        expression = d.get("expression")
        if kind not in SUPPORTED_TYPES or not expression:
            return None
        expr = expression_for(expression, base)
        if not expr:
            return None
        components = []
        for c in d.get("component") or ():
            ref = self._by_url.get(c.get("definition", ""))
            if ref is None or ref.get("type") not in SUPPORTED_TYPES - {"composite"}:
                return None
            components.append(Component(c["definition"], ref["type"], c["expression"]))
        return SearchParam(
            name=d["code"],
            type=kind,
            expression=expr,
            base=base,
            url=d.get("url", ""),
            targets=tuple(d.get("target") or ()),
            components=tuple(components),
            modifiers=tuple(d.get("modifier") or ()),
            comparators=tuple(d.get("comparator") or ()),
        )

    def add(self, search_parameter_resource: dict) -> list[SearchParam]:
        """Register a custom SearchParameter resource; returns the parameters it defines per base."""
        d = search_parameter_resource
        if d.get("resourceType") != "SearchParameter":
            raise ValueError("not a SearchParameter resource")
        if not d.get("code") or not d.get("base") or not d.get("type"):
            raise ValueError("SearchParameter needs code, base and type")
        if d["type"] not in SUPPORTED_TYPES or not d.get("expression"):
            raise ValueError(f"SearchParameter type {d['type']!r} without expression cannot be indexed")
        made = []
        with self._lock:
            for base in d["base"]:
                p = self._param(d, base)
                if p is None:
                    raise ValueError(f"expression {d['expression']!r} has no part for base {base}")
                made.append(p)
            self._file(d)
            # Types built before keep working; rebuild those the new definition touches.
            if any(b in COMMON_BASES for b in d["base"]):
                self._built.clear()
            else:
                for base in d["base"]:
                    self._built.pop(base, None)
        for listener in list(self._listeners):
            listener(d["base"])
        return made


def _same_values(p: SearchParam, q: SearchParam) -> bool:
    """Whether ``p`` and ``q`` index values the same way (kind, and a composite's components)."""
    shape = [(c.kind, c.expression) for c in q.components]
    return q.type == p.type and shape == [(c.kind, c.expression) for c in p.components]


def _twin(p: SearchParam, params: dict[str, SearchParam]) -> tuple[str, ...]:
    """The parameter with exactly ``p``'s values and a name sorting first (Practitioner's name for
    phonetic: 4 of a Practitioner's 24 rows), or (). References keep their own rows: includes use them."""
    if p.type == "reference":
        return ()
    twins = [n for n, q in params.items() if n < p.name and q.expression == p.expression and _same_values(p, q)]
    return (min(twins),) if twins else ()


def _union_parts(p: SearchParam, params: dict[str, SearchParam]) -> tuple[str, ...]:
    """The parameters whose union parts together are exactly ``p``'s, or () if none are.

    Observation's combo-code is code | component-code: storing its rows too would repeat 5 of a weight
    Observation's 17 index rows (a composite parameter's components must match as well).
    """
    mine = set(split_union(p.expression))
    if len(mine) < 2 or p.type == "reference":
        return ()
    found, covered = [], set()
    for name, q in params.items():
        theirs = set(split_union(q.expression))
        if name != p.name and _same_values(p, q) and theirs < mine:
            found.append(name)
            covered |= theirs
    return tuple(sorted(found)) if covered == mine and len(found) >= 2 else ()


@lru_cache(maxsize=1)
def get_registry() -> Registry:
    """The process-wide registry, loaded once from the bundled R4 definitions."""
    with SPEC_FILE.open(encoding="utf-8") as f:
        bundle = json.load(f)
    return Registry([e["resource"] for e in bundle.get("entry", ()) if "resource" in e])
