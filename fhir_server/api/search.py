"""Search views: GET [type]?..., POST [type]/_search and Patient/[id]/$everything, as searchset Bundles.

A result that fills more than one page is kept as a snapshot of its ids (``search/paging.py``) and
its links (self, first, previous, next, last) read pages of it: ``[base]?_getpages=ID&_getpagesoffset=N``.
``_include``/``_revinclude`` (with ``:iterate``) add entries in mode "include", per page;
``_summary``/``_elements`` subset entries; unknown parameters become an OperationOutcome entry
(mode "outcome") unless Prefer: handling=strict.
"""

from __future__ import annotations

import dataclasses
import math
import time
from urllib.parse import urlencode

from flask import Blueprint, Response, g, request

import auth

from ..errors import FHIRError, issue, operation_outcome
from ..resources import SUPPORTED_TYPES, is_supported
from ..search import custom, paging
from ..search.dates import DateFormatError, date_range
from ..search.errors import SearchError
from ..search.extract import index_values
from ..search.parser import parse
from ..search.query import Predicate, SearchQuery
from ..search.registry import get_registry
from ..search.summary import select_elements, summarize
from ..store.base import SearchResult, Store, StoredVersion
from .http import base_url, fhir_response, prefer
from .rest import allow, check_id, check_type, config, store

search = Blueprint("fhir_search", __name__)

# Includes and $everything are bounded: a search page must not turn into a database dump.
MAX_INCLUDED = 1000
MAX_ITERATE = 4
MAX_EVERYTHING = 5000


def run_search(st: Store, query: SearchQuery) -> SearchResult:
    """``st.search(query)``, except on MongoDB where chains, _has and _sort need more than a find()."""
    from ..store import mongodb, mongodb_search  # noqa: PLC0415 - pymongo is only needed for that backend

    if isinstance(st, mongodb.MongoStore):
        return mongodb_search.search(st.resources, query)
    return st.search(query)


def _caller():
    return g.get("caller")


def _readable(versions: list[StoredVersion]) -> list[StoredVersion]:
    caller = _caller()
    return [v for v in versions if v.resource is not None and auth.can_read(caller, v.resource)]


def _shape(resource: dict, query: SearchQuery) -> dict:
    if query.elements:
        return select_elements(resource, query.elements)
    return summarize(resource, query.summary)


def _entry(v: StoredVersion, mode: str, query: SearchQuery) -> dict:
    return {
        "fullUrl": f"{base_url()}/{v.resource_type}/{v.id}",
        "resource": _shape(v.resource or {}, query),
        "search": {"mode": mode},
    }


# --- includes ------------------------------------------------------------------------------------


def _include_targets(resource: dict, spec: str) -> list[tuple[str, str]]:
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


def _revinclude(st: Store, spec: str, found: list[StoredVersion]) -> list[StoredVersion]:
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
        ids.extend(run_search(st, q).ids)
    return st.read_many(source, ids)


def _includes(st: Store, query: SearchQuery, matches: list[StoredVersion]) -> list[StoredVersion]:
    """Included and revincluded resources, following ``:iterate`` specs from the included ones too."""
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
                for rtype, rid in _include_targets(v.resource or {}, spec):
                    if (rtype, rid) not in seen and is_supported(rtype):
                        seen.add((rtype, rid))
                        wanted.setdefault(rtype, []).append(rid)
        new: list[StoredVersion] = []
        for rtype, rids in wanted.items():
            new.extend(st.read_many(rtype, rids))
        for spec in revinclude:
            for v in _revinclude(st, spec, frontier):
                if (v.resource_type, v.id) not in seen:
                    seen.add((v.resource_type, v.id))
                    new.append(v)
        new = _readable(new)[: MAX_INCLUDED - len(included)]
        included.extend(new)
        frontier = new
        # Later rounds follow only what was asked with :iterate.
        include, revinclude = query.include_iterate, query.revinclude_iterate
    return included


# --- paging: snapshots --------------------------------------------------------------------------


def _owner() -> str:
    caller = _caller()
    return caller.client_id if caller is not None else ""


def _shape_of(query: SearchQuery) -> paging.Shape:
    return paging.Shape(query.include, query.revinclude, query.include_iterate, query.revinclude_iterate,
                        query.summary, query.elements)  # fmt: skip


def _read_refs(st: Store, refs: tuple[tuple[str, str], ...]) -> list[StoredVersion]:
    """Current versions of ``refs`` in their order; deleted ones are missing (one read per type)."""
    found: dict[tuple[str, str], StoredVersion] = {}
    for rtype, rids in paging.by_type(refs).items():
        found.update(((v.resource_type, v.id), v) for v in st.read_many(rtype, rids))
    return [found[r] for r in refs if r in found]


def _snapshot(st: Store, kind: str, resource_type: str, refs: list[tuple[str, str]], total: int | None,
              count: int, shape: paging.Shape, target: str | None = None) -> paging.Snapshot:  # fmt: skip
    """Store the ordered matches of a search that fills more than one page; links then point into it."""
    cfg = config()
    expires = float(math.ceil(time.time() + cfg.search_snapshot_lifetime_s))
    snapshot = paging.Snapshot(paging.new_id(expires), _owner(), expires, kind, resource_type, tuple(refs), count,
                               total, target, shape)  # fmt: skip
    paging.save(st, snapshot)
    return snapshot


def _snapshot_page(st: Store, snapshot: paging.Snapshot, offset: int, count: int,
                   warnings: tuple[str, ...] = ()) -> dict:  # fmt: skip
    """One page of a snapshot as a searchset Bundle: searches and $everything alike."""
    shape = snapshot.shape
    query = SearchQuery(snapshot.resource_type, include=shape.include, revinclude=shape.revinclude,
                        include_iterate=shape.include_iterate, revinclude_iterate=shape.revinclude_iterate,
                        summary=shape.summary, elements=shape.elements)  # fmt: skip
    found = _readable(_read_refs(st, paging.page(snapshot, offset, count)))
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    # A search's total counts every match: shown only to a caller who may see them all.
    if snapshot.total is not None and (snapshot.kind != "search" or auth.sees_all(_caller(), snapshot.resource_type)):
        bundle["total"] = snapshot.total
    bundle["link"] = paging.links(base_url(), snapshot, offset, count)
    if snapshot.kind == "search":
        entries = [_entry(v, "match", query) for v in found]
        entries.extend(_entry(v, "include", query) for v in _includes(st, query, found))
    else:
        target = ("Patient", snapshot.target)
        entries = [_entry(v, "match" if (v.resource_type, v.id) == target else "include", query) for v in found]
    notes = list(warnings)
    if (note := paging.cap_warning(snapshot, config().search_snapshot_max)) is not None:
        notes.append(note)
    if notes:
        outcome = operation_outcome([issue("warning", "not-supported" if n in warnings else "too-costly", n)
                                     for n in notes])  # fmt: skip
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return bundle


def _get_page() -> dict:
    """``[base]?_getpages=ID&_getpagesoffset=N&_count=C``: one page of a stored snapshot."""
    search_id = request.args.get(paging.PAGES, "")
    offset = _page_number(request.args.get(paging.OFFSET), paging.OFFSET, 0)
    try:
        snapshot = paging.load(store(), search_id, _owner(), time.time())
    except paging.SnapshotGone as exc:
        raise FHIRError(exc.status, exc.message, code="not-found") from None
    count = _page_number(request.args.get("_count"), "_count", snapshot.count)
    if count == 0:
        raise FHIRError(400, "_count of a paging link must be positive", code="invalid")
    st = store()
    # Decided again on every page: the token that follows a link may not be the one that searched.
    if snapshot.kind == "search":
        allow("search", snapshot.resource_type)
    else:
        patient = st.read("Patient", snapshot.target or "")
        allow("operation:everything", "Patient", patient.resource if patient is not None else None)
    return _snapshot_page(st, snapshot, offset, min(count, config().max_count))


# --- the searchset -------------------------------------------------------------------------------


def _single_page_links(resource_type: str, pairs: list[tuple[str, str]], query: SearchQuery) -> list[dict]:
    """Links of a result that fits on its page: no snapshot, every link is the request itself."""
    url = f"{base_url()}/{resource_type}?{urlencode(pairs)}" if pairs else f"{base_url()}/{resource_type}"
    links = [{"relation": "self", "url": url}]
    if query.count > 0:
        links += [{"relation": "first", "url": url}, {"relation": "last", "url": url}]
    return links


def _parse(resource_type: str, pairs: list[tuple[str, str]], cfg, strict: bool) -> SearchQuery:
    """Parse; a parameter unknown here may be a custom SearchParameter another process stored: reload, retry.

    The reload happens only when the stored SearchParameters changed since this process last
    loaded them (one cheap history look-up), not on every search with an unknown parameter.
    """
    def attempt() -> SearchQuery:
        return parse(resource_type, pairs, default_count=cfg.default_count, max_count=cfg.max_count, strict=strict)

    try:
        query = attempt()
    except SearchError as exc:
        if "unknown search parameter" not in str(exc) or not custom.refresh(store()):
            raise
        return attempt()
    if any("unknown search parameter" in w for w in query.warnings) and custom.refresh(store()):
        return attempt()
    return query


def _run(st: Store, query: SearchQuery) -> SearchResult:
    try:
        return run_search(st, query)
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="invalid") from None
    except NotImplementedError as exc:
        raise FHIRError(400, str(exc), code="not-supported") from None


def searchset(resource_type: str, pairs: list[tuple[str, str]]) -> dict:
    """The searchset Bundle of ``resource_type?pairs`` for the current caller.

    One query fetches the ordered ids of the matches (up to RELAIS_SEARCH_SNAPSHOT_MAX + 1): when
    they fit on the page, that is the answer and its total; otherwise they become a snapshot.
    """
    check_type(resource_type)
    allow("search", resource_type)
    cfg = config()
    strict = prefer(request).get("handling") == "strict"
    try:
        query = _parse(resource_type, pairs, cfg, strict)
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="invalid") from None
    if query.summary == "count":
        query = dataclasses.replace(query, count=0)
    st = store()
    cap = cfg.search_snapshot_max
    if query.count > 0:
        # The id list replaces the count query: its length is the total, unless it passes the cap.
        limit = max(cap, query.count) + 1  # more than a page holds: a page never hides that there is more
        ids = _run(st, dataclasses.replace(query, count=limit, offset=0, total="none")).ids
        if len(ids) > query.count or query.offset > 0:
            total: int | None = None
            if len(ids) > cap:
                ids = ids[:cap]
                if query.total != "none":
                    total = _run(st, dataclasses.replace(query, count=0, offset=0, total="accurate")).total
            elif query.total != "none":
                total = len(ids)
            snapshot = _snapshot(st, "search", resource_type, [(resource_type, i) for i in ids], total,
                                 query.count, _shape_of(query))  # fmt: skip
            return _snapshot_page(st, snapshot, query.offset, query.count, query.warnings)
        result = SearchResult(ids, len(ids))
    else:
        result = _run(st, query)  # _count=0 or _summary=count: the total alone
    found = _readable(st.read_many(resource_type, result.ids)) if result.ids else []
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    # The store counts every match; a caller who may not see them all must not learn how many there are.
    if result.total is not None and query.total != "none" and auth.sees_all(_caller(), resource_type):
        bundle["total"] = result.total
    bundle["link"] = _single_page_links(resource_type, pairs, query)
    entries = [_entry(v, "match", query) for v in found]
    entries.extend(_entry(v, "include", query) for v in _includes(st, query, found))
    if query.warnings:
        outcome = operation_outcome([issue("warning", "not-supported", w) for w in query.warnings])
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle["entry"] = entries
    return bundle


@search.get("")
@search.get("/")
def get_pages() -> Response:
    if paging.PAGES not in request.args:
        raise FHIRError(400, "GET [base] answers paging links (_getpages) only: search a type, GET [base]/Type?...",
                        code="not-supported")
    return fhir_response(_get_page())


@search.get("/<resource_type>")
def search_get(resource_type: str) -> Response:
    return fhir_response(searchset(resource_type, list(request.args.items(multi=True))))


@search.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return fhir_response(searchset(resource_type, pairs))


# --- Patient/$everything -------------------------------------------------------------------------


def _page_number(value: str | None, name: str, default: int) -> int:
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise FHIRError(400, f"{name} takes a non-negative integer, got {value!r}", code="invalid")
    return int(value)


def compartment_params(resource_type: str) -> list[str]:
    """Reference parameters of ``resource_type`` that place a resource in a Patient's compartment.

    An approximation of R4's Patient CompartmentDefinition: "patient", and "subject" or
    "beneficiary" when they may point at a Patient.
    """
    out = []
    for name, sp in get_registry().params_for(resource_type).items():
        if sp.type != "reference":
            continue
        if name == "patient" or (name in ("subject", "beneficiary") and (not sp.targets or "Patient" in sp.targets)):
            out.append(name)
    return out


@search.get("/Patient/<id>/$everything")
def everything(id: str) -> Response:
    check_id(id)
    st = store()
    patient = st.read("Patient", id)
    if patient is None or patient.deleted or patient.resource is None:
        raise FHIRError(404, f"Patient/{id} is not known", code="not-found")
    allow("operation:everything", "Patient", patient.resource)
    if not auth.can_read(_caller(), patient.resource):
        raise FHIRError(404, f"Patient/{id} is not known", code="not-found")
    types = [t.strip() for t in request.args.get("_type", "").split(",") if t.strip()] or list(SUPPORTED_TYPES)
    since = request.args.get("_since")
    since_ts = None
    if since:
        try:
            since_ts = date_range(since)[0]
        except DateFormatError:
            raise FHIRError(400, f"_since: {since!r} is not a FHIR instant", code="invalid") from None
    collected: list[StoredVersion] = [patient]
    seen = {("Patient", id)}
    for rtype in types:
        if not is_supported(rtype) or rtype == "Patient":
            continue
        ids: list[str] = []
        for param in compartment_params(rtype):
            q = SearchQuery(rtype, ((Predicate(param, "reference", "eq", ("Patient", id, None)),),),
                            count=MAX_EVERYTHING, total="none")  # fmt: skip
            ids.extend(i for i in run_search(st, q).ids if (rtype, i) not in seen)
            seen.update((rtype, i) for i in ids)
        if ids:
            collected.extend(st.read_many(rtype, ids))
    # What the patient itself points at (general practitioner, managing organization, links).
    for rtype, rid in _include_targets(patient.resource, "*"):
        if (rtype, rid) not in seen and is_supported(rtype) and (rtype in types or not request.args.get("_type")):
            seen.add((rtype, rid))
            collected.extend(st.read_many(rtype, [rid]))
    if since_ts is not None:
        collected = [v for v in collected if date_range(v.last_updated)[1] >= since_ts]
    collected = _readable(collected)[:MAX_EVERYTHING]
    # The whole compartment on one page unless _count asks for less; then pages of one snapshot,
    # the patient first, as in searches.
    count = _page_number(request.args.get("_count"), "_count", len(collected) or 1)
    offset = _page_number(request.args.get("_offset"), "_offset", 0)
    refs = [(v.resource_type, v.id) for v in collected]
    if count and (len(refs) > count or offset > 0):
        cap = config().search_snapshot_max
        snapshot = _snapshot(st, "everything", "Patient", refs[:cap], len(refs), min(count, config().max_count),
                             paging.Shape(), target=id)  # fmt: skip
        return fhir_response(_snapshot_page(st, snapshot, offset, snapshot.count))
    base = f"{base_url()}/Patient/{id}/$everything"
    kept = list(request.args.items(multi=True))
    url = f"{base}?{urlencode(kept)}" if kept else base
    plain = SearchQuery("Patient")
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(collected),
        "link": [{"relation": "self", "url": url}],
        "entry": [
            _entry(v, "match" if v.resource_type == "Patient" and v.id == id else "include", plain)
            for v in (collected if count else [])
        ],
    }
    return fhir_response(bundle)
