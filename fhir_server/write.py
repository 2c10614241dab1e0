"""The one write path: REST, bundles, HL7 v2 and partner feeds, triage all write through here.

1. validate each resource, assign id, meta.lastUpdated, extract index values (outside the lock);
2. in one store transaction: check preconditions, store version, history, index rows and
   one outbox event per change;
3. return results. Nothing is notified here: the dispatcher reads the outbox afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from . import integrity, locking
from . import patch as patch_formats
from .actor import Actor
from .audit_origin import stamped
from .errors import FHIRError, gone, not_found
from .ids import new_id
from .outbox import wake
from .resources import validate
from .search.extract import index_values
from .search.query import IndexRow, SearchQuery
from .store.base import Store, StoredVersion, Transaction, VersionConflict
from .subscriptions.hook import Acceptance, accepted

CREATE, UPDATE, PATCH, DELETE = "create", "update", "patch", "delete"
_HTTP_METHOD = {CREATE: "POST", UPDATE: "PUT", PATCH: "PATCH", DELETE: "DELETE"}
# Outcomes that stored a version, and so an outbox event ("exists" and "unchanged" stored nothing)
_NOTIFIED = ("created", "updated", "deleted")
_MAX_ATTEMPTS = 20


class Stale(Exception):
    """What the caller resolved before ``write()`` (conditional matches) no longer holds inside its
    transaction: nothing was stored; resolve again and write again."""


# Runs first inside the write's transaction; raises Stale when the caller's resolution is out of date.
Guard = Callable[[Transaction], None]
# Decides an update or a patch ("update" | "patch", type, the resource to store, the version it replaces
# or None) inside the write's transaction, where a conditional update's match and a patch's result are
# known; raises to refuse (the caller's exception goes through).
Replacing = Callable[[str, str, dict, dict | None], None]
# Runs last inside the write's transaction with its results: what must be stored exactly when the changes
# are (a feed's record of the message and its answer), in the same commit and the same sync.
Then = Callable[[Transaction, list["Result"]], None]


@dataclass
class Change:
    """One requested change. ``condition`` makes it conditional (If-None-Exist, PUT/DELETE Type?query)."""

    action: str  # create | update | patch | delete
    resource_type: str
    id: str | None = None
    resource: dict | None = None
    patch: list | dict | None = None  # the patch document, in ``patch_format``
    patch_format: str = patch_formats.JSON_PATCH  # json-patch | merge-patch | fhirpath-patch
    if_match: int | None = None
    condition: SearchQuery | None = None
    validated: bool = False  # the caller already ran resources.validate on ``resource``


@dataclass
class Result:
    """What one change did: ``status`` is the HTTP status a REST client sees for it."""

    status: int
    outcome: str  # created | updated | deleted | exists | unchanged
    version: StoredVersion | None
    resource_type: str
    id: str | None


@dataclass
class _Prepared:
    change: Change
    resource: dict | None
    id: str | None
    index: list[IndexRow] | None  # None: extract inside the transaction (the id is not known before)


def now_instant() -> str:
    """The current time as a FHIR instant, UTC, millisecond precision (fixed width, so it sorts)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def normalize_instant(value: str) -> str:
    """A client's instant in the stored fixed-width form (raise ValueError if it is none)."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write(store: Store, changes: list[Change], actor: Actor | None, *, acceptance: Acceptance | None = None,
          durable: bool = True, events: bool = True, guard: Guard | None = None, replacing: Replacing | None = None,
          dangling: bool = False, jobs: list[dict] | None = None, then: Then | None = None) -> list[Result]:
    """Apply ``changes`` made by ``actor`` atomically; raise FHIRError (nothing stored) if any of them fails.

    ``actor`` owns the Subscriptions it writes (None: authentication is off); a Subscription is accepted
    only with the app's ``acceptance``, or kept as it is when ``actor`` is the server. Access was decided
    by the caller. ``durable=False`` is for records whose source is already safe (AuditEvents built from
    the outbox); ``events=False`` for records nothing may follow (AuditEvents: no Subscription may watch them).
    ``guard``, ``replacing`` and ``then`` run inside the store transaction (see Guard, Replacing, Then); a
    reference to a local resource that does not exist once every change is applied is a 422 unless ``dangling``.
    ``jobs`` are outbox payloads of other kinds (a national-record export) stored in the same transaction:
    the job exists exactly when the write does, whatever crashes after. A locked resource
    (``locking``) is changed by the platform's own actors only: anyone else gets 409.
    """
    timestamp = now_instant()
    prepared = [_indexed(i, _prepare, change, timestamp, actor, acceptance) for i, change in enumerate(changes)]
    for _ in range(_MAX_ATTEMPTS):
        try:
            with store.transaction(durable=durable) as txn:
                if guard is not None:
                    guard(txn)
                references = None if dangling else _References(txn, prepared)
                results = [_indexed(i, _apply, txn, item, timestamp, actor, acceptance, replacing, references)
                           for i, item in enumerate(prepared)]
                if events:
                    _event(txn, [r.version for r in results if r.outcome in _NOTIFIED and r.version is not None])
                for payload in jobs or ():
                    txn.outbox_append(payload)
                if then is not None:
                    then(txn, results)
        except VersionConflict:
            # Another writer took the version first (MongoDB without a global lock): redo from a fresh read.
            continue
        _register_search_parameters(results)
        if events and any(r.outcome in _NOTIFIED for r in results):
            wake.ring(store)
        return results
    raise FHIRError(409, "Too many concurrent writers on the same resource; try again", code="conflict")


def _indexed(index: int, step, *args):
    """Run one step for change ``index``; a FHIRError says which change failed (bundles name the entry)."""
    try:
        return step(*args)
    except FHIRError as exc:
        exc.change_index = index  # type: ignore[attr-defined]
        raise


def _register_search_parameters(results: list[Result]) -> None:
    """An active SearchParameter written here becomes searchable for resources written from now on."""
    for result in results:
        stored = result.version
        if result.resource_type == "SearchParameter" and stored and stored.resource:
            from .searching import custom

            custom.register(stored.resource)


def _prepare(change: Change, timestamp: str, actor: Actor | None, acceptance: Acceptance | None) -> _Prepared:
    if change.action in (CREATE, UPDATE):
        resource = change.resource
        if not change.validated:
            validate(resource, change.resource_type)
        assert resource is not None
        # a Subscription is checked and owned here, and a client's AuditEvent stamped, whatever way it came in
        resource = stamped(accepted(resource, actor, acceptance), actor)
        if change.action == UPDATE and change.condition is None:
            if "id" not in resource:
                raise FHIRError(400, "An update needs the resource id in the body", code="required", expression=["id"])
            if resource["id"] != change.id:
                raise FHIRError(
                    400, f"The id in the body ({resource['id']}) differs from the URL ({change.id})", code="invalid"
                )
        if change.condition is not None:
            return _Prepared(change, _with_meta(resource, None, timestamp), change.id, None)
        # A create may carry an id chosen by the server beforehand (a transaction resolving urn:uuid refs).
        id = (change.id or new_id()) if change.action == CREATE else change.id
        resource = _with_meta(resource, id, timestamp)
        # Extraction is the costly part of a write: do it before taking the store's write lock.
        return _Prepared(change, resource, id, index_values(resource))
    if change.action in (PATCH, DELETE):
        return _Prepared(change, None, change.id, None)
    raise FHIRError(400, f"Unknown change {change.action!r}", code="not-supported")


def _with_meta(resource: dict, id: str | None, timestamp: str) -> dict:
    resource = dict(resource)
    if id is not None:
        resource = {"resourceType": resource["resourceType"], "id": id, **resource}
        resource["id"] = id
    meta = dict(resource.get("meta") or {})
    meta["lastUpdated"] = timestamp
    resource["meta"] = meta
    return resource


def replaced_body(store: Store, resource_type: str, resource: dict | None) -> dict | None:
    """The stored resource an update of ``resource`` (by the id in its body) would replace; None if none."""
    rid = resource.get("id") if isinstance(resource, dict) else None
    if not isinstance(rid, str):
        return None
    current = store.read(resource_type, rid)
    return None if current is None or current.deleted else current.resource


def condition_matches(searcher: Store | Transaction, condition: SearchQuery) -> list[str]:
    """The ids ``condition`` matches, two at most: enough to tell none, one and several apart."""
    return searcher.search(dataclasses.replace(condition, count=2, offset=0, total="none", sort=())).ids


def _apply(txn: Transaction, item: _Prepared, timestamp: str, actor: Actor | None,
           acceptance: Acceptance | None, replacing: Replacing | None, references: _References | None) -> Result:
    change = item.change
    rtype = change.resource_type
    id = item.id
    if change.condition is not None:
        matches = condition_matches(txn, change.condition)
        if len(matches) > 1:
            raise FHIRError(412, f"The condition matches {len(matches)} or more {rtype} resources", code="duplicate")
        if change.action == CREATE and matches:
            if item.id is not None and item.id != matches[0]:
                # the caller resolved "no match" and gave the new resource an id other changes may name
                raise Stale()
            existing = txn.current(rtype, matches[0])
            return Result(200, "exists", existing, rtype, matches[0])
        if change.action == DELETE and not matches:
            return Result(204, "unchanged", None, rtype, None)
        if change.action == PATCH and not matches:
            raise FHIRError(404, f"No {rtype} matches the condition", code="not-found")
        if change.action == UPDATE:
            body_id = (item.resource or {}).get("id")
            if matches and body_id is not None and body_id != matches[0]:
                raise FHIRError(400, f"The id in the body ({body_id}) differs from the match ({matches[0]})")
            id = matches[0] if matches else (body_id or new_id())
        elif matches:
            id = matches[0]
    if change.action == CREATE and change.condition is not None:
        id = item.id or new_id()
    assert id is not None
    # A create's id is new (a UUIDv7 from new_id, here or in the Bundle): nothing to look up.
    # Were it not, storing its version 1 would raise VersionConflict.
    current = None if change.action == CREATE else txn.current(rtype, id)
    if (current is not None and not current.deleted and locking.is_locked(current.resource)
            and not locking.may_change_locked(actor)):
        raise FHIRError(409, locking.locked_message(rtype, id, change.action), code="conflict")
    if change.if_match is not None and (current is None or current.deleted or current.version != change.if_match):
        have = "none" if current is None or current.deleted else f'W/"{current.version}"'
        raise FHIRError(412, f'If-Match W/"{change.if_match}" does not match the current version ({have})',
                        code="conflict")
    version = 1 if current is None else current.version + 1
    method = _HTTP_METHOD[change.action]
    if change.action == DELETE:
        if current is None or current.deleted:
            return Result(204, "unchanged", current, rtype, id)
        stored = StoredVersion(rtype, id, version, timestamp, method, None, deleted=True)
        txn.put(stored, [])
        if references is not None:
            references.deleted(rtype, id)
        return Result(200, "deleted", stored, rtype, id)
    if change.action == PATCH:
        if current is None:
            raise not_found(rtype, id)
        if current.deleted:
            raise gone(rtype, id, current.version)
        patched = _patched(current.resource or {}, change, rtype, id)
        resource = _with_meta(stamped(accepted(patched, actor, acceptance), actor), None, timestamp)
        if replacing is not None:
            replacing("patch", rtype, resource, current.resource)
    else:
        assert item.resource is not None
        resource = _with_meta(item.resource, id, timestamp)
        if replacing is not None and change.action == UPDATE:
            replacing("update", rtype, resource, None if current is None or current.deleted else current.resource)
    if locking.is_locked(resource) and not locking.may_change_locked(actor):
        raise FHIRError(403, locking.LOCKING_REFUSED, code="forbidden", expression=[f"{rtype}.meta.tag"])
    resource["meta"]["versionId"] = str(version)
    if references is not None:
        references.check(resource)
    stored = StoredVersion(rtype, id, version, timestamp, method, resource)
    txn.put(stored, item.index if item.index is not None else index_values(resource))
    created = current is None or current.deleted
    return Result(201 if created else 200, "created" if created else "updated", stored, rtype, id)


class _References:
    """Refuses (422) a resource whose local reference names nothing, as HAPI does by default.

    Checked inside the write's transaction before each resource is stored (a store without
    transactions cannot undo a put): a resource this write stores is found, even when it comes
    later in the write (a transaction's fullUrls), one deleted by it or by a write committed first is not.
    """

    def __init__(self, txn: Transaction, prepared: list[_Prepared]):
        self.txn = txn
        self.written = {(p.change.resource_type, p.id) for p in prepared
                        if p.id is not None and p.change.action in (CREATE, UPDATE)}
        self.known: dict[tuple[str, str], bool] = {}  # exists, by (type, id): 500 entries name one Patient

    def deleted(self, resource_type: str, id: str) -> None:
        self.written.discard((resource_type, id))
        self.known[(resource_type, id)] = False

    def check(self, resource: dict) -> None:
        for target in integrity.local_references(resource):
            key = (target.resource_type, target.id)
            if key in self.written:
                continue
            exists = self.known.get(key)
            if exists is None:
                current = self.txn.current(*key)
                exists = self.known[key] = current is not None and not current.deleted
            # a versioned reference may name a version of a resource deleted since
            if not exists and not (target.versioned and self.txn.current(*key) is not None):
                path = integrity.reference_path(resource, target.reference)
                raise FHIRError(422, f"{path}: {target.reference} names no resource on this server"
                                " (RELAIS_ALLOW_DANGLING_REFERENCES allows it)", code="processing",
                                expression=[path])


def _patched(resource: dict, change: Change, rtype: str, id: str) -> dict:
    result = patch_formats.apply(resource, change.patch, change.patch_format)
    if not isinstance(result, dict) or result.get("resourceType") != rtype or result.get("id") != id:
        raise FHIRError(422, "A patch may not change resourceType or id", code="processing")
    validate(result, rtype)
    return result


def _event(txn: Transaction, stored: list[StoredVersion]) -> None:
    """One outbox event for the versions a write stored, however many (the dispatcher hands them out one by one).

    One row a write, not one a resource: ingesting Synthea transactions, claiming and deleting one row
    a resource held the writer lock 1.1 s of every 11.9 (docs/performance.md, session 4).
    """
    if stored:
        txn.outbox_append(
            {
                "kind": "resource",
                "items": [
                    {"type": v.resource_type, "id": v.id, "version": v.version, "method": v.method,
                     "last_updated": v.last_updated}
                    for v in stored
                ],
            }
        )


__all__ = ["CREATE", "DELETE", "PATCH", "UPDATE", "Change", "Guard", "Replacing", "Result", "Stale",
           "condition_matches", "normalize_instant", "now_instant", "replaced_body", "write"]
