"""Searches beyond one type: a patient's compartment and a search across types (R4 http.html#search).

``GET [base]/Patient/[id]/[type]?...`` is the type's search with one more AND clause: the OR of the
compartment parameters R4's CompartmentDefinition names for the type, each pointing at the patient
(``Patient/[id]/Patient`` also matches the patient itself, as ``compartment.patient_ids`` does).

``GET [base]?_type=A,B&...`` searches each listed type with the same parameters and answers one
searchset, the matches of A then those of B. Only parameters every listed type has are taken (R4:
any other is a 400). ``_type`` is required: like HAPI FHIR, the base URL alone is no search of every
type. ``_sort`` needs a single type. ``[base]/Patient/[id]/*`` searches every type of the compartment.

Both answer through the one search service: access decisions and filtering, ``total``, includes,
``_summary``/``_elements``, and paging snapshots are the same as for a search of one type.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlencode

from .. import compartment
from ..errors import FHIRError, issue
from ..resources import SUPPORTED_TYPES, is_supported
from ..search.query import Predicate, SearchQuery
from ..search.registry import get_registry
from ..store.base import Store
from .includes import includes
from .service import (
    Access,
    Settings,
    entry,
    outcome_entry,
    parse_query,
    read_refs,
    readable,
    run_query,
    search,
    shape_of,
    snapshot,
    snapshot_page,
)

TYPE = "_type"
# Parameters that shape the result rather than select matches: any type takes them.
_RESULT_PARAMS = {"_count", "_offset", "_sort", "_total", "_summary", "_elements", "_include", "_revinclude",
                  "_format", "_pretty", TYPE}


def compartment_types() -> list[str]:
    """The supported types that can be in a patient's compartment (Patient first)."""
    return [t for t in SUPPORTED_TYPES if compartment.has_compartment(t)]


def membership(resource_type: str, patient_id: str) -> tuple[Predicate, ...]:
    """The OR clause that keeps ``resource_type`` resources in the compartment of Patient/``patient_id``."""
    clause = [Predicate(p, "reference", "eq", ("Patient", patient_id, None)) for p in compartment.params(resource_type)]
    if resource_type == "Patient":
        clause.insert(0, Predicate("_id", "token", "eq", (None, patient_id)))
    return tuple(clause)


def compartment_search(store: Store, access: Access, patient_id: str, resource_type: str,
                       pairs: list[tuple[str, str]], settings: Settings, *, strict: bool = False) -> dict:  # fmt: skip
    """The searchset of ``Patient/patient_id/resource_type?pairs`` (``*``: every compartment type)."""
    path = f"Patient/{patient_id}/{resource_type}"
    if resource_type == "*":
        types = [t for t in compartment_types()]
        within = {t: (membership(t, patient_id),) for t in types}
        return multi_search(store, access, types, pairs, settings, strict=strict, within=within, path=path)
    if not is_supported(resource_type):
        raise FHIRError(404, f"Unknown or unsupported resource type {resource_type!r}", code="not-supported")
    if not compartment.has_compartment(resource_type):
        raise FHIRError(400, f"{resource_type} is not in the Patient compartment (R4's CompartmentDefinition)",
                        code="invalid")
    return search(store, access, resource_type, pairs, settings, strict=strict,
                  within=(membership(resource_type, patient_id),), path=path)


def _check_shared(types: list[str], pairs: list[tuple[str, str]]) -> None:
    """400 unless every search parameter of ``pairs`` is defined for every type (R4 http.html#search)."""
    registry = get_registry()
    for name, _value in pairs:
        if name.startswith("_has:") or name.partition(":")[0] in _RESULT_PARAMS:
            continue
        base = name.partition(".")[0].partition(":")[0]
        lacking = [t for t in types if registry.get(t, base) is None]
        if lacking:
            raise FHIRError(400, f"Search parameter {base!r} is not defined for {', '.join(lacking)}: a search "
                                 "across types takes only the parameters they all have", code="invalid")


def system_search(store: Store, access: Access, pairs: list[tuple[str, str]], settings: Settings, *,
                  strict: bool = False) -> dict:  # fmt: skip
    """The searchset of ``[base]?_type=A,B&pairs``."""
    named = [t.strip() for name, value in pairs if name == TYPE for t in value.split(",") if t.strip()]
    if not named:
        raise FHIRError(400, "A search of the base URL needs _type (GET [base]?_type=Patient,Observation&...), "
                             "or search one type: GET [base]/Type?...", code="required")
    unknown = [t for t in named if not is_supported(t)]
    if unknown:
        raise FHIRError(400, f"_type names unsupported types: {', '.join(unknown)}", code="not-supported")
    return multi_search(store, access, list(dict.fromkeys(named)), pairs, settings, strict=strict, path="")


def multi_search(store: Store, access: Access, types: list[str], pairs: list[tuple[str, str]], settings: Settings,
                 *, strict: bool, within: dict[str, tuple[tuple[Predicate, ...], ...]] | None = None,
                 path: str) -> dict:  # fmt: skip
    """One searchset over several types: each searched with ``pairs`` (and its ``within`` clauses)."""
    for resource_type in types:
        access.decide("search", resource_type, None)
    own = [(k, v) for k, v in pairs if k != TYPE]
    _check_shared(types, own)
    queries: dict[str, SearchQuery] = {}
    for t in types:
        query = parse_query(store, t, own, settings, strict)
        queries[t] = dataclasses.replace(query, clauses=query.clauses + (within or {}).get(t, ()))
    first = queries[types[0]]
    if first.sort and len(types) > 1:
        raise FHIRError(400, "_sort applies to a search of one type: search each type apart to sort", code="invalid")
    warnings = tuple(dict.fromkeys(w for q in queries.values() for w in q.warnings))
    cap = settings.snapshot_max
    count = 0 if first.summary == "count" else first.count
    refs: list[tuple[str, str]] = []
    total = 0
    for t, query in queries.items():
        ids = run_query(store, dataclasses.replace(query, count=cap + 1, offset=0, total="none")).ids
        if len(ids) > cap and first.total != "none":
            total += run_query(store, dataclasses.replace(query, count=0, offset=0, total="accurate")).total or 0
        else:
            total += len(ids)
        refs.extend((t, i) for i in ids)
    shown_total = total if first.total != "none" and all(map(access.sees_all, types)) else None
    refs = refs[:cap]
    if count > 0 and (len(refs) > count or first.offset > 0):
        snap = snapshot(store, access, settings, "system", ",".join(types), refs,
                        total if first.total != "none" else None, count, shape_of(first))  # fmt: skip
        return snapshot_page(store, access, settings, snap, first.offset, count, warnings)
    base = settings.base_url
    found = readable(access, read_refs(store, tuple(refs))) if count > 0 else []
    url = f"{base}/{path}" if path else base
    link = f"{url}?{urlencode(pairs)}" if pairs else url
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if shown_total is not None:
        bundle["total"] = shown_total
    bundle["link"] = [{"relation": "self", "url": link}]
    if count > 0:
        bundle["link"] += [{"relation": "first", "url": link}, {"relation": "last", "url": link}]
    entries = [entry(base, v, "match", first) for v in found]
    entries.extend(entry(base, v, "include", first)
                   for v in includes(store, first, found, lambda vs: readable(access, vs)))  # fmt: skip
    if warnings:
        entries.append(outcome_entry([issue("warning", "not-supported", w) for w in warnings]))
    bundle["entry"] = entries
    return bundle
