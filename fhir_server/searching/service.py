"""The one search service: a type and its parameters in, the searchset Bundle the actor may see out.

REST search (``GET [type]?``, ``POST [type]/_search``), the GET entries of batches and transactions,
paging links (``[base]?_getpages=ID&_getpagesoffset=N``) and ``Patient/$everything`` all answer
through here, so access filtering, ``total``, ``_include``/``_revinclude``, paging snapshots,
``_summary``/``_elements`` and warnings are the same whichever door a search comes in by.

Data in, data out: the API layer turns its request into an ``Access`` (the actor's decisions) and
``Settings``; nothing here knows about HTTP.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from ..errors import FHIRError, issue, operation_outcome
from ..resources import is_supported
from ..search.errors import SearchError, SearchTooCostly
from ..search.limits import DEFAULT_LIMITS, Limits
from ..search.parser import parse
from ..search.query import Predicate, SearchQuery
from ..search.summary import select_elements, summarize
from ..store.base import SearchResult, Store, StoredVersion
from . import custom, paging
from .chains import readable_chains
from .includes import includes


def _no_decision(interaction: str, resource_type: str | None, resource: dict | None) -> None:
    return None


@dataclass(frozen=True)
class Access:
    """What the actor may do and see, as the API layer decided it (authentication off: everything).

    ``decide(interaction, type, resource)`` raises when the interaction is refused; ``can_read``
    filters what is shown; ``sees_all(type)`` says whether a store count may be shown as ``total``
    (a patient-scoped caller must not learn how many resources it cannot see); ``owner`` is the
    client whose paging snapshots these are.
    """

    decide: Callable[[str, str | None, dict | None], None] = _no_decision
    can_read: Callable[[dict], bool] = lambda resource: True
    sees_all: Callable[[str], bool] = lambda resource_type: True
    owner: str = ""


@dataclass(frozen=True)
class Settings:
    """Where links point, how big pages and snapshots get, the largest search accepted (RELAIS_* settings)."""

    base_url: str
    default_count: int = 20
    max_count: int = 1000
    snapshot_max: int = 10_000
    snapshot_lifetime_s: int = 3600
    limits: Limits = DEFAULT_LIMITS

    @classmethod
    def from_config(cls, config) -> Settings:
        return cls(config.base_url, config.default_count, config.max_count, config.search_snapshot_max,
                   config.search_snapshot_lifetime_s, search_limits(config))  # fmt: skip


def search_limits(config) -> Limits:
    """The search limits the RELAIS_SEARCH_MAX_* settings give."""
    return Limits(chain_depth=config.search_max_chain_depth, parameters=config.search_max_parameters,
                  values=config.search_max_values, sort_keys=config.search_max_sort_keys,
                  includes=config.search_max_includes)  # fmt: skip


# --- entries ------------------------------------------------------------------------------------


def readable(access: Access, versions: list[StoredVersion]) -> list[StoredVersion]:
    """The versions the actor may read (deleted ones never are)."""
    return [v for v in versions if v.resource is not None and access.can_read(v.resource)]


def _shape(resource: dict, query: SearchQuery) -> dict:
    if query.elements:
        return select_elements(resource, query.elements)
    return summarize(resource, query.summary)


def entry(base: str, v: StoredVersion, mode: str, query: SearchQuery) -> dict:
    """A searchset entry: fullUrl, the resource shaped by ``_summary``/``_elements``, its search mode."""
    return {
        "fullUrl": f"{base}/{v.resource_type}/{v.id}",
        "resource": _shape(v.resource or {}, query),
        "search": {"mode": mode},
    }


def outcome_entry(issues: list[dict]) -> dict:
    """A searchset entry (mode ``outcome``) holding an OperationOutcome of ``issues``."""
    return {"resource": operation_outcome(issues), "search": {"mode": "outcome"}}


# --- paging: snapshots --------------------------------------------------------------------------

# Snapshot kinds whose entries are all matches: a search of one type, a search across types (whose
# snapshot's resource_type lists them, comma-separated). The other kind is "everything".
SEARCH_KINDS = ("search", "system")


def searched_types(snap: paging.Snapshot) -> list[str]:
    """The types a search snapshot searched (one, or those of a search across types)."""
    return snap.resource_type.split(",") if snap.kind == "system" else [snap.resource_type]


def shape_of(query: SearchQuery) -> paging.Shape:
    """How ``query`` asks each page's entries to be built (its includes, _summary, _elements)."""
    return paging.Shape(query.include, query.revinclude, query.include_iterate, query.revinclude_iterate,
                        query.summary, query.elements)  # fmt: skip


def read_refs(store: Store, refs: tuple[tuple[str, str], ...]) -> list[StoredVersion]:
    """Current versions of ``refs`` in their order; deleted ones are missing (one read per type)."""
    found: dict[tuple[str, str], StoredVersion] = {}
    for rtype, rids in paging.by_type(refs).items():
        found.update(((v.resource_type, v.id), v) for v in store.read_many(rtype, rids))
    return [found[r] for r in refs if r in found]


def snapshot(store: Store, access: Access, settings: Settings, kind: str, resource_type: str,
             refs: list[tuple[str, str]], total: int | None, count: int, shape: paging.Shape,
             target: str | None = None) -> paging.Snapshot:  # fmt: skip
    """Store the ordered matches of a search that fills more than one page; links then point into it."""
    expires = float(math.ceil(time.time() + settings.snapshot_lifetime_s))
    kept = paging.Snapshot(paging.new_id(expires), access.owner, expires, kind, resource_type, tuple(refs), count,
                           total, target, shape)  # fmt: skip
    paging.save(store, kept)
    return kept


def snapshot_page(store: Store, access: Access, settings: Settings, snap: paging.Snapshot, offset: int, count: int,
                  warnings: tuple[str, ...] = ()) -> dict:  # fmt: skip
    """One page of a snapshot as a searchset Bundle: searches and $everything alike."""
    shape = snap.shape
    query = SearchQuery(snap.resource_type, include=shape.include, revinclude=shape.revinclude,
                        include_iterate=shape.include_iterate, revinclude_iterate=shape.revinclude_iterate,
                        summary=shape.summary, elements=shape.elements)  # fmt: skip
    found = readable(access, read_refs(store, paging.page(snap, offset, count)))
    base = settings.base_url
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    # A search's total counts every match: shown only to a caller who may see them all.
    if snap.total is not None and (snap.kind not in SEARCH_KINDS or all(map(access.sees_all, searched_types(snap)))):
        bundle["total"] = snap.total
    bundle["link"] = paging.links(base, snap, offset, count)
    if snap.kind in SEARCH_KINDS:
        entries = [entry(base, v, "match", query) for v in found]
        entries.extend(entry(base, v, "include", query)
                       for v in includes(store, query, found, lambda vs: readable(access, vs)))  # fmt: skip
    else:
        target = ("Patient", snap.target)
        entries = [entry(base, v, "match" if (v.resource_type, v.id) == target else "include", query) for v in found]
    notes = [issue("warning", "not-supported", w) for w in warnings]
    if (note := paging.cap_warning(snap, settings.snapshot_max)) is not None:
        notes.append(issue("warning", "too-costly", note))
    if notes:
        entries.append(outcome_entry(notes))
    bundle["entry"] = entries
    return bundle


# Snapshot kinds another module of this package pages (Task/$worklist): kind -> its page builder, which
# decides access itself, called as ``builder(store, access, settings, snapshot, offset, count)``.
PAGE_BUILDERS: dict[str, Callable[..., dict]] = {}


def page_number(value: str | None, name: str, default: int) -> int:
    """A non-negative integer parameter (``_count``, ``_offset``, ``_getpagesoffset``); 400 otherwise."""
    if value is None:
        return default
    if not (value.isascii() and value.isdigit() and len(value) <= 9):
        raise FHIRError(400, f"{name} takes a non-negative integer, got {value!r}", code="invalid")
    return int(value)


def page(store: Store, access: Access, settings: Settings, search_id: str, offset: str | None,
         count: str | None) -> dict:  # fmt: skip
    """``[base]?_getpages=ID&_getpagesoffset=N&_count=C``: one page of a stored snapshot."""
    start = page_number(offset, paging.OFFSET, 0)
    try:
        snap = paging.load(store, search_id, access.owner, time.time())
    except paging.SnapshotGone as exc:
        raise FHIRError(exc.status, exc.message, code="not-found") from None
    size = page_number(count, "_count", snap.count)
    if size == 0:
        raise FHIRError(400, "_count of a paging link must be positive", code="invalid")
    builder = PAGE_BUILDERS.get(snap.kind)
    if builder is not None:
        return builder(store, access, settings, snap, start, min(size, settings.max_count))
    # Decided again on every page: the token that follows a link may not be the one that searched.
    if snap.kind in SEARCH_KINDS:
        for resource_type in searched_types(snap):
            access.decide("search", resource_type, None)
    else:
        patient = store.read("Patient", snap.target or "")
        access.decide("operation:everything", "Patient", patient.resource if patient is not None else None)
    return snapshot_page(store, access, settings, snap, start, min(size, settings.max_count))


# --- the searchset -------------------------------------------------------------------------------


def _single_page_links(base: str, resource_type: str, pairs: list[tuple[str, str]], query: SearchQuery) -> list[dict]:
    """Links of a result that fits on its page: no snapshot, every link is the request itself."""
    url = f"{base}/{resource_type}?{urlencode(pairs)}" if pairs else f"{base}/{resource_type}"
    links = [{"relation": "self", "url": url}]
    if query.count > 0:
        links += [{"relation": "first", "url": url}, {"relation": "last", "url": url}]
    return links


def parse_query(store: Store, resource_type: str, pairs: list[tuple[str, str]], settings: Settings,
                strict: bool) -> SearchQuery:  # fmt: skip
    """Parse; a parameter unknown here may be a custom SearchParameter another process stored: reload, retry.

    The reload happens only when the stored SearchParameters changed since this process last
    loaded them (one cheap history look-up), not on every search with an unknown parameter.
    """

    def attempt() -> SearchQuery:
        return parse(resource_type, pairs, default_count=settings.default_count, max_count=settings.max_count,
                     strict=strict, limits=settings.limits)  # fmt: skip

    try:
        try:
            query = attempt()
        except SearchError as exc:
            if "unknown search parameter" not in str(exc) or not custom.refresh(store):
                raise
            return attempt()
        if any("unknown search parameter" in w for w in query.warnings) and custom.refresh(store):
            return attempt()
        return query
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="too-costly" if isinstance(exc, SearchTooCostly) else "invalid") from None


def through_readable(store: Store, access: Access, query: SearchQuery) -> SearchQuery:
    """``query`` whose chains and _has traverse only what the actor may read (``chains``)."""
    try:
        return readable_chains(store, query, access.can_read, access.sees_all)
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="too-costly" if isinstance(exc, SearchTooCostly) else "invalid") from None


def run_query(store: Store, query: SearchQuery) -> SearchResult:
    """``store.search(query)``; a query the store cannot run is a 400 (FHIRError), not a crash."""
    try:
        return store.search(query)
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="invalid") from None
    except NotImplementedError as exc:
        raise FHIRError(400, str(exc), code="not-supported") from None


def search(store: Store, access: Access, resource_type: str, pairs: list[tuple[str, str]], settings: Settings,
           *, strict: bool = False, within: tuple[tuple[Predicate, ...], ...] = (),
           path: str | None = None) -> dict:  # fmt: skip
    """The searchset Bundle of ``resource_type?pairs`` as the actor may see it.

    One query fetches the ordered ids of the matches (up to the snapshot cap + 1): when they fit on
    the page, that is the answer and its total; otherwise they become a snapshot whose first page
    is answered. ``strict`` (Prefer: handling=strict) refuses unknown parameters instead of warning.
    ``within`` adds AND clauses to the parsed query (a compartment search's membership); ``path`` is
    where the request was sent, relative to the base (``Patient/p1/Observation``), for the self link.
    """
    if not is_supported(resource_type):
        raise FHIRError(404, f"Unknown or unsupported resource type {resource_type!r}", code="not-supported")
    access.decide("search", resource_type, None)
    query = through_readable(store, access, parse_query(store, resource_type, pairs, settings, strict))
    if within:
        query = dataclasses.replace(query, clauses=query.clauses + within)
    if query.summary == "count":
        query = dataclasses.replace(query, count=0)
    cap = settings.snapshot_max
    if query.count > 0:
        # The id list replaces the count query: its length is the total, unless it passes the cap.
        limit = max(cap, query.count) + 1  # more than a page holds: a page never hides that there is more
        ids = run_query(store, dataclasses.replace(query, count=limit, offset=0, total="none")).ids
        if len(ids) > query.count or query.offset > 0:
            total: int | None = None
            if len(ids) > cap:
                ids = ids[:cap]
                if query.total != "none":
                    total = run_query(store, dataclasses.replace(query, count=0, offset=0, total="accurate")).total
            elif query.total != "none":
                total = len(ids)
            snap = snapshot(store, access, settings, "search", resource_type, [(resource_type, i) for i in ids], total,
                            query.count, shape_of(query))  # fmt: skip
            return snapshot_page(store, access, settings, snap, query.offset, query.count, query.warnings)
        result = SearchResult(ids, len(ids))
    else:
        result = run_query(store, query)  # _count=0 or _summary=count: the total alone
    found = readable(access, store.read_many(resource_type, result.ids)) if result.ids else []
    base = settings.base_url
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    # The store counts every match; a caller who may not see them all must not learn how many there are.
    if result.total is not None and query.total != "none" and access.sees_all(resource_type):
        bundle["total"] = result.total
    bundle["link"] = _single_page_links(base, path or resource_type, pairs, query)
    entries = [entry(base, v, "match", query) for v in found]
    entries.extend(entry(base, v, "include", query)
                   for v in includes(store, query, found, lambda vs: readable(access, vs)))  # fmt: skip
    if query.warnings:
        entries.append(outcome_entry([issue("warning", "not-supported", w) for w in query.warnings]))
    bundle["entry"] = entries
    return bundle
