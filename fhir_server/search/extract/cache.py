"""The per-type cache of compiled extractors: one per (resource type, parameter), built at a type's
first resource and dropped when the registry's definitions for the type change."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from ..query import IndexRow
from ..registry import Registry, SearchParam, get_registry
from .paths import CompiledPath
from .rows import ROW_MAKERS, composite_second


class Extractor:
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
            seconds = [s for st, sv in second_path.evaluate(node) for s in composite_second(comps[1].kind, st, sv)]
            for f in firsts:
                for text, lo, hi, kind in seconds:
                    out.append(IndexRow(name, kind, f.system, f.code, text, lo, hi))
        return out


_cache_lock = threading.Lock()
_extractors: dict[tuple[str, bool], list[Extractor]] = {}
_followed: Registry | None = None  # the registry whose changes empty this cache


def extractors(resource_type: str, fast: bool = True) -> list[Extractor]:
    """The compiled extractors of a type (built once per type)."""
    key = (resource_type, fast)
    got = _extractors.get(key)
    if got is None:
        params = _follow(get_registry()).params_for(resource_type)
        got = [Extractor(p, fast) for p in params.values() if not p.union_of]
        with _cache_lock:
            _extractors[key] = got
    return got


def _follow(registry: Registry) -> Registry:
    """``registry``, once this cache listens to its changes (a miss asks; a hit costs nothing)."""
    global _followed
    with _cache_lock:
        if _followed is not registry:
            registry.on_change(forget)
            _followed = registry
    return registry


def forget(resource_types: Iterable[str]) -> None:
    """Drop compiled extractors after the registry changed (``Registry.add``)."""
    with _cache_lock:
        types = set(resource_types)
        if types & {"Resource", "DomainResource"}:
            _extractors.clear()
        else:
            for key in [k for k in _extractors if k[0] in types]:
                del _extractors[key]
