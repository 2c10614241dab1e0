"""``_include`` and ``_revinclude`` (with ``:iterate``): the resources a page of matches brings along.

Bounded: a search page must not turn into a database dump (MAX_INCLUDED resources, MAX_ITERATE rounds).
What the caller may not read is dropped before it can lead to more.
"""

from __future__ import annotations

from collections.abc import Callable

from ..resources import is_supported
from ..search.extract import index_values
from ..search.query import Predicate, SearchQuery
from ..search.registry import get_registry
from ..store.base import Store, StoredVersion

MAX_INCLUDED = 1000
MAX_ITERATE = 4


def include_targets(resource: dict, spec: str) -> list[tuple[str, str]]:
    """(type, id) pairs that ``spec`` (Type:param[:Target] or *) selects from ``resource``."""
    rtype = resource.get("resourceType")
    if spec == "*":
        source, param, target = rtype, None, None
    else:
        parts = spec.split(":")
        source, param = parts[0], parts[1]
        target = parts[2] if len(parts) > 2 else None
    if source != rtype:
        return []
    params = get_registry().params_for(rtype)
    out = []
    for row in index_values(resource):
        if row.kind != "reference" or not row.system or not row.code:
            continue
        if param is not None and row.param != param:
            continue
        if param is None and params.get(row.param) is None:
            continue
        if target is not None and row.system != target:
            continue
        out.append((row.system, row.code))
    return out


def _revinclude(store: Store, spec: str, found: list[StoredVersion]) -> list[StoredVersion]:
    """Resources of spec's type whose spec parameter points at one of ``found``."""
    if spec == "*":
        return []
    source, param = spec.split(":")[:2]
    if not is_supported(source):
        return []
    by_type: dict[str, list[str]] = {}
    for v in found:
        by_type.setdefault(v.resource_type, []).append(v.id)
    ids: list[str] = []
    for rtype, rids in by_type.items():
        pred = Predicate(param, "reference", "in", (rtype, tuple(rids)))
        q = SearchQuery(source, ((pred,),), count=MAX_INCLUDED, total="none")
        ids.extend(store.search(q).ids)
    return store.read_many(source, ids)


def includes(store: Store, query: SearchQuery, matches: list[StoredVersion],
             readable: Callable[[list[StoredVersion]], list[StoredVersion]]) -> list[StoredVersion]:  # fmt: skip
    """Included and revincluded resources that pass ``readable``, following ``:iterate`` specs from them too."""
    seen = {(v.resource_type, v.id) for v in matches}
    included: list[StoredVersion] = []
    frontier = matches
    include, revinclude = query.include, query.revinclude
    for _round in range(MAX_ITERATE + 1):
        if not frontier or not (include or revinclude) or len(included) >= MAX_INCLUDED:
            break
        wanted: dict[str, list[str]] = {}
        for v in frontier:
            for spec in include:
                for rtype, rid in include_targets(v.resource or {}, spec):
                    if (rtype, rid) not in seen and is_supported(rtype):
                        seen.add((rtype, rid))
                        wanted.setdefault(rtype, []).append(rid)
        new: list[StoredVersion] = []
        for rtype, rids in wanted.items():
            new.extend(store.read_many(rtype, rids))
        for spec in revinclude:
            for v in _revinclude(store, spec, frontier):
                if (v.resource_type, v.id) not in seen:
                    seen.add((v.resource_type, v.id))
                    new.append(v)
        new = readable(new)[: MAX_INCLUDED - len(included)]
        included.extend(new)
        frontier = new
        # Later rounds follow only what was asked with :iterate.
        include, revinclude = query.include_iterate, query.revinclude_iterate
    return included
