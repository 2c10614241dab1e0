"""Search snapshots: the ordered ids of a search's matches, kept in the store, so paging stays put.

As HAPI FHIR does: a search whose matches fill more than one page stores their ids (ids only) under a
random search id; every paging link (``[base]?_getpages=ID&_getpagesoffset=N&_count=C``) reads a
slice of that list, so a client walking pages while others write neither skips nor repeats an entry.
Searches and ``Patient/$everything`` share it. The functions here are data in, data out; the store
calls are the three at the end (save, load, purge).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlencode

from ..store.base import Store

TABLE = "search-snapshot"
# One small document per snapshot, keyed alike: the purge job lists these, never the id lists.
EXPIRY_TABLE = "search-snapshot-expiry"

PAGES = "_getpages"
OFFSET = "_getpagesoffset"

# "<expiry, 10 decimal digits>-<22 random url-safe characters>": the id says when it expires, so an
# expired snapshot is answered 410 even after the purge removed it; keys sort in expiry order.
_ID = re.compile(r"(\d{10})-([A-Za-z0-9_-]{22})")


@dataclass(frozen=True)
class Shape:
    """How entries of every page are built: what ``_include``/``_revinclude``/``_summary``/``_elements`` asked."""

    include: tuple[str, ...] = ()
    revinclude: tuple[str, ...] = ()
    include_iterate: tuple[str, ...] = ()
    revinclude_iterate: tuple[str, ...] = ()
    summary: str | None = None
    elements: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """The matches of one search (or one ``$everything``) at the time it ran, in order."""

    id: str
    owner: str  # the client that created it ("" with authentication off)
    expires: float  # epoch seconds
    kind: str  # "search" | "everything"
    resource_type: str  # the searched type; "Patient" for $everything
    refs: tuple[tuple[str, str], ...]  # (type, id) in result order, at most the configured cap
    count: int  # page size when a link does not say
    total: int | None  # matches when it ran (more than len(refs) past the cap); None: _total=none
    target: str | None = None  # $everything: the patient id
    shape: Shape = field(default_factory=Shape)

    @property
    def truncated(self) -> bool:
        return self.total is not None and self.total > len(self.refs)


class SnapshotGone(Exception):
    """A paging link that cannot be answered: 410 (expired) or 404 (unknown, or another client's)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def new_id(expires: float) -> str:
    """A fresh search id that carries its expiry (whole seconds, rounded up)."""
    return f"{int(-(-expires // 1)):010d}-{secrets.token_urlsafe(16)}"


def id_expiry(search_id: str) -> float | None:
    """The expiry a search id carries, or None when it is not one of ours."""
    found = _ID.fullmatch(search_id)
    return float(found.group(1)) if found else None


def encode(snapshot: Snapshot) -> dict:
    """The stored document: ids joined in one string (FHIR ids hold no space or slash), compact to parse."""
    types = {t for t, _ in snapshot.refs}
    single = types == {snapshot.resource_type} or not types
    doc = {
        "owner": snapshot.owner,
        "expires": snapshot.expires,
        "kind": snapshot.kind,
        "type": snapshot.resource_type,
        "target": snapshot.target,
        "count": snapshot.count,
        "total": snapshot.total,
        "shape": {
            "include": list(snapshot.shape.include),
            "revinclude": list(snapshot.shape.revinclude),
            "include_iterate": list(snapshot.shape.include_iterate),
            "revinclude_iterate": list(snapshot.shape.revinclude_iterate),
            "summary": snapshot.shape.summary,
            "elements": list(snapshot.shape.elements),
        },
    }
    if single:
        doc["ids"] = " ".join(i for _, i in snapshot.refs)
    else:
        doc["refs"] = " ".join(f"{t}/{i}" for t, i in snapshot.refs)
    return doc


def decode(search_id: str, doc: dict) -> Snapshot:
    """The Snapshot of a stored document; ValueError when the document is not one."""
    try:
        rtype = doc["type"]
        if "ids" in doc:
            refs = tuple((rtype, i) for i in doc["ids"].split())
        else:
            refs = tuple(tuple(r.split("/", 1)) for r in doc["refs"].split())  # type: ignore[misc]
        s = doc.get("shape") or {}
        shape = Shape(
            tuple(s.get("include", ())), tuple(s.get("revinclude", ())), tuple(s.get("include_iterate", ())),
            tuple(s.get("revinclude_iterate", ())), s.get("summary"), tuple(s.get("elements", ())),
        )  # fmt: skip
        return Snapshot(search_id, doc["owner"], float(doc["expires"]), doc["kind"], rtype, refs, int(doc["count"]),
                        doc["total"], doc.get("target"), shape)  # fmt: skip
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ValueError(f"search snapshot {search_id}: {exc}") from None


def check(search_id: str, doc: dict | None, owner: str, now: float) -> Snapshot:
    """The snapshot a paging link names, for ``owner``; SnapshotGone otherwise.

    Another client's snapshot is answered as if it did not exist: 410 once the id's expiry has
    passed, 404 before (the answer depends on the id alone, so it tells nothing about others).
    """
    expiry = id_expiry(search_id)
    if expiry is None:
        raise SnapshotGone(404, f"{PAGES}={search_id!r} is not a known search")
    if expiry <= now:
        raise SnapshotGone(410, f"The search {search_id} has expired: run it again")
    if doc is None or doc.get("owner") != owner:
        raise SnapshotGone(404, f"The search {search_id} is not known (it may have been purged): run it again")
    try:
        snapshot = decode(search_id, doc)
    except ValueError:
        raise SnapshotGone(404, f"The search {search_id} is not known: run it again") from None
    if snapshot.expires <= now:
        raise SnapshotGone(410, f"The search {search_id} has expired: run it again")
    return snapshot


def page(snapshot: Snapshot, offset: int, count: int) -> tuple[tuple[str, str], ...]:
    """The (type, id) refs of one page."""
    return snapshot.refs[offset : offset + count] if count > 0 else ()


def page_url(base: str, search_id: str, offset: int, count: int) -> str:
    """A link into a snapshot, HAPI's form: ``[base]?_getpages=ID&_getpagesoffset=N&_count=C``."""
    return f"{base}?{urlencode([(PAGES, search_id), (OFFSET, str(offset)), ('_count', str(count))])}"


def links(base: str, snapshot: Snapshot, offset: int, count: int) -> list[dict]:
    """self, first, previous, next and last of the page at ``offset``, all into the snapshot."""
    n = len(snapshot.refs)

    def link(relation: str, at: int) -> dict:
        return {"relation": relation, "url": page_url(base, snapshot.id, at, count)}

    out = [link("self", offset), link("first", 0)]
    if offset > 0:
        # From past the end, "previous" is the last full page rather than a page of nothing.
        out.append(link("previous", max(0, min(offset - count, ((n - 1) // count) * count if n else 0))))
    if offset + count < n:
        out.append(link("next", offset + count))
    if n:
        out.append(link("last", ((n - 1) // count) * count))
    return out


def cap_warning(snapshot: Snapshot, cap: int) -> str | None:
    """The warning of a truncated snapshot (its pages cover the first ``cap`` matches only)."""
    if not snapshot.truncated:
        return None
    return (
        f"The search matches {snapshot.total} resources; its pages cover the first {len(snapshot.refs)} "
        f"(RELAIS_SEARCH_SNAPSHOT_MAX={cap}): narrow the criteria to reach the rest"
    )


def by_type(refs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """Ids grouped by type, each group in the order given (one read per type)."""
    groups: dict[str, list[str]] = {}
    for rtype, rid in refs:
        groups.setdefault(rtype, []).append(rid)
    return groups


# --- store I/O -----------------------------------------------------------------------------------


def save(store: Store, snapshot: Snapshot) -> None:
    """Store a snapshot (not synced to disk: losing one at a power cut costs a re-run of the search)."""
    # The expiry record first: a crash between the two leaves a record that the purge clears,
    # never an id list that nothing would ever remove.
    store.kv_put(EXPIRY_TABLE, snapshot.id, {}, durable=False)
    store.kv_put(TABLE, snapshot.id, encode(snapshot), durable=False)


def load(store: Store, search_id: str, owner: str, now: float) -> Snapshot:
    """The snapshot named by a paging link, for ``owner``; SnapshotGone (404, 410) otherwise."""
    # Malformed or expired ids are answered without a store read.
    doc = store.kv_get(TABLE, search_id) if (id_expiry(search_id) or 0) > now else None
    return check(search_id, doc, owner, now)


def purge(store: Store, now: float) -> int:
    """Delete the snapshots expired at ``now``; the number deleted (the scheduler's job)."""
    deleted = 0
    for key, _doc in store.kv_list(EXPIRY_TABLE):
        expiry = id_expiry(key)
        if expiry is not None and expiry > now:
            break  # keys sort by expiry: the rest are live
        store.kv_delete(TABLE, key)
        store.kv_delete(EXPIRY_TABLE, key)
        deleted += 1
    return deleted
