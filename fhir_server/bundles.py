"""Batch and transaction Bundles (R4 http.html#transaction), built on the one write path.

A transaction is ONE call to ``write()``: every change is stored, or none. POST entries get
their ids before writing so that ``urn:uuid:``/``urn:oid:`` references can be rewritten first;
conditional references (``Patient?identifier=...``) are resolved by a search. A batch runs each
entry on its own and reports each. Entries run in the order DELETE, POST, PUT/PATCH, GET.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from urllib.parse import parse_qsl

import auth

from . import fhirjson, integrity
from . import patch as patch_formats
from . import write as w
from .actor import Actor
from .errors import FHIRError, gone, issue, not_found, operation_outcome
from .ids import new_id
from .resources import is_supported, valid_id, validate
from .search.limits import DEFAULT_LIMITS, Limits
from .search.query import SearchQuery
from .searching import Access, Settings, conditional_criteria
from .searching import search as searchset
from .store.base import Store, StoredVersion, Transaction
from .subscriptions.hook import Acceptance

BATCH, TRANSACTION = "batch", "transaction"
# Resolutions redone after a concurrent writer changed what they matched: each redo follows a commit
# that touched the same criteria, so a few suffice; beyond, the client is told to try again (409).
_RESOLVE_ATTEMPTS = 10
_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
_INTERACTION = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}
_PATCH_BINARY_TYPES = {"application/json-patch+json", "application/merge-patch+json", "application/json",
                       "application/fhir+json"}

Allow = Callable[[str, str | None, dict | None], None]


@dataclass
class Options:
    """What the HTTP layer hands the processor: where links point, limits, preferences, access control."""

    base: str
    max_entries: int = 10000
    default_count: int = 20
    max_count: int = 1000
    prefer_return: str = "minimal"  # minimal | representation | OperationOutcome
    allow: Allow = field(default=lambda interaction, rtype, resource: None)
    # What search entries show, as REST search would: the caller's access (None: decided by ``allow``
    # alone, every resource readable) and the snapshot settings.
    access: Access | None = None
    snapshot_max: int = 10_000
    snapshot_lifetime_s: int = 3600
    search_limits: Limits = DEFAULT_LIMITS  # the largest search entry accepted (RELAIS_SEARCH_MAX_*)
    actor: Actor | None = None  # who writes the entries (None: authentication is off)
    acceptance: Acceptance | None = None  # how Subscription entries are accepted (None: refused)
    replacing: w.Replacing | None = None  # an update decided on the version it replaces, inside the write
    dangling: bool = False  # RELAIS_ALLOW_DANGLING_REFERENCES: store references to local resources that do not exist

    def search_access(self) -> Access:
        return self.access if self.access is not None else Access(decide=self.allow)

    def search_settings(self) -> Settings:
        return Settings(self.base, self.default_count, self.max_count, self.snapshot_max, self.snapshot_lifetime_s,
                        self.search_limits)  # fmt: skip


@dataclass
class _Entry:
    index: int
    method: str
    resource_type: str
    id: str | None = None
    vid: str | None = None
    query: list[tuple[str, str]] | None = None  # conditional URL or search parameters
    resource: dict | None = None
    full_url: str | None = None
    request: dict = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


# ---- entry parsing -----------------------------------------------------------------------------


def _entry_error(index: int, status: int, text: str, code: str = "invalid", element: str = "") -> FHIRError:
    where = f"Bundle.entry[{index}]"
    return FHIRError(status, f"{where}: {text}", code=code, expression=[where + element])


def _parse_entry(index: int, raw: object, base: str, bundle_type: str) -> _Entry:
    if not isinstance(raw, dict):
        raise _entry_error(index, 400, "an entry is a JSON object", "structure")
    request = raw.get("request")
    if not isinstance(request, dict):
        raise _entry_error(index, 400, "an entry of a batch or transaction needs a request", "required", ".request")
    method = request.get("method")
    url = request.get("url")
    if method not in _ORDER:
        raise _entry_error(index, 400, f"request.method {method!r} is not one of GET, HEAD, POST, PUT, PATCH, DELETE",
                           "invalid", ".request.method")
    if not isinstance(url, str) or not url.strip():
        raise _entry_error(index, 400, "request.url is required", "required", ".request.url")
    url = url.strip()
    if url.startswith(base + "/"):
        url = url[len(base) + 1:]
    path, _, query = url.lstrip("/").partition("?")
    parts = path.split("/") if path else []
    if not parts or not is_supported(parts[0]):
        raise _entry_error(index, 404 if parts else 400, f"request.url {url!r} names no supported resource type",
                           "not-supported", ".request.url")
    entry = _Entry(index, method, parts[0], request=request)
    full_url = raw.get("fullUrl")
    entry.full_url = full_url if isinstance(full_url, str) and full_url else None
    if len(parts) >= 2:
        entry.id = parts[1]
        if not valid_id(entry.id):
            raise _entry_error(index, 400, f"{entry.id!r} is not a valid FHIR id", "invalid", ".request.url")
    if len(parts) == 4 and parts[2] == "_history" and method in ("GET", "HEAD") and parts[3].isdigit():
        entry.vid = parts[3]
    elif len(parts) > 2:
        raise _entry_error(index, 400, f"request.url {url!r} is not an interaction this server runs in a {bundle_type}",
                           "not-supported", ".request.url")
    if "?" in url:
        entry.query = parse_qsl(query, keep_blank_values=True)
    resource = raw.get("resource")
    if method in ("POST", "PUT", "PATCH"):
        if not isinstance(resource, dict):
            raise _entry_error(index, 400, f"a {method} entry needs a resource", "required", ".resource")
        entry.resource = resource
    if method == "POST" and (entry.id is not None or entry.query):
        raise _entry_error(index, 400, "a POST entry's url is the resource type alone", "invalid", ".request.url")
    if method in ("PUT", "PATCH", "DELETE") and entry.id is None and not entry.query:
        raise _entry_error(index, 400, f"a {method} entry's url is Type/id or Type?criteria", "invalid",
                           ".request.url")
    if method == "PUT" and entry.id is not None and entry.query:
        raise _entry_error(index, 400, "a PUT url is Type/id or Type?criteria, not both", "invalid", ".request.url")
    return entry


def _patch_operations(entry: _Entry) -> tuple[list | dict, str]:
    """The patch an entry carries and its format: a FHIRPath Patch is the entry's Parameters resource;
    a JSON Patch or a merge patch comes in a Binary (R4 has no other way to put one in a Bundle)."""
    resource = entry.resource or {}
    if resource.get("resourceType") == "Parameters":
        return resource, patch_formats.FHIRPATH_PATCH
    content_type = resource.get("contentType")
    if resource.get("resourceType") != "Binary" or content_type not in _PATCH_BINARY_TYPES:
        raise _entry_error(entry.index, 400, "a PATCH entry carries a Parameters resource (FHIRPath Patch) or a"
                           " Binary of contentType application/json-patch+json or application/merge-patch+json",
                           "invalid", ".resource")
    try:
        document = fhirjson.parse_body(base64.b64decode(resource.get("data") or "", validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, TypeError):
        raise _entry_error(entry.index, 400, "the Binary data is not base64 JSON", "structure",
                           ".resource.data") from None
    try:
        return document, patch_formats.format_of(content_type, document)
    except FHIRError as exc:
        raise _entry_error(entry.index, exc.status, exc.diagnostics, exc.code, ".resource.data") from None


# ---- searches (conditional references, ifNoneExist, conditional PUT, GET entries) ----------------


def _matches(store: Store | Transaction, query: SearchQuery, where: str) -> list[str]:
    try:
        return w.condition_matches(store, query)
    except NotImplementedError as exc:
        raise FHIRError(400, f"{where}: {exc}", code="not-supported", expression=[where]) from None


class _Resolver:
    """The searches a Bundle's resolution runs before writing, checked again inside the write's transaction.

    Matches decide ids and references before the write (so its costly part, validation and index
    extraction, stays outside the store's lock); ``guard`` makes the write raise Stale when one of them
    has changed since, and the caller resolves again. So a condition is decided on what the write's
    transaction sees, as REST If-None-Exist is, and two concurrent Bundles cannot both create.
    """

    def __init__(self, store: Store, cache: dict[str, tuple[SearchQuery, list[str]]] | None = None,
                 access: Access | None = None):  # fmt: skip
        self.store = store
        self.access = access  # the caller's: chains in criteria traverse only what it may read
        # what each search answered, by conditional reference (checked once however many use it) or rank
        self.seen: dict[str | int, tuple[SearchQuery, list[str]]] = {}
        self.cache = {} if cache is None else cache  # conditional references resolved by earlier entries

    def criteria(self, resource_type: str, pairs: list[tuple[str, str]], where: str) -> SearchQuery:
        """The query of conditional criteria, their chains through what the caller may read."""
        return conditional_criteria(resource_type, pairs, where, store=self.store, access=self.access)

    def matches(self, query: SearchQuery, where: str) -> list[str]:
        ids = _matches(self.store, query, where)
        self.seen[len(self.seen)] = (query, ids)
        return ids

    def reference(self, reference: str, where: Callable[[], str]) -> str:
        """The ``Type/id`` a conditional reference (``Patient?identifier=...``) names: exactly one match.
        ``where`` locates it in the Bundle (built only when needed)."""
        rtype, _, query = reference.partition("?")
        found = self.cache.get(reference)
        if found is None:
            if not is_supported(rtype):
                raise FHIRError(400, f"{where()}: conditional reference {reference!r} names no supported type",
                                code="invalid", expression=[where()])
            criteria = self.criteria(rtype, parse_qsl(query, keep_blank_values=True), where())
            found = self.cache[reference] = (criteria, _matches(self.store, criteria, where()))
        self.seen[reference] = found
        ids = found[1]
        if len(ids) != 1:
            many = "no" if not ids else "several"
            raise FHIRError(412, f"{where()}: conditional reference {reference!r} matches {many} {rtype} resources",
                            code="not-found" if not ids else "multiple-matches", expression=[where()])
        return f"{rtype}/{ids[0]}"

    def guard(self, txn: Transaction) -> None:
        for query, ids in self.seen.values():
            if sorted(w.condition_matches(txn, query)) != sorted(ids):
                raise w.Stale()


_MISSING = object()
# (node, key, value before): how to give an entry's resource back the content a resolution rewrote
Undo = list[tuple[dict, str, object]]


def _undo(undo: Undo) -> None:
    for node, key, value in reversed(undo):
        if value is _MISSING:
            node.pop(key, None)
        else:
            node[key] = value
    undo.clear()


def _rewrite_references(resolver: _Resolver, entry: _Entry, mapping: dict[str, str], transaction: bool,
                        undo: Undo) -> None:
    """Replace, in place, references to other entries' fullUrls and conditional references (``undo`` says how
    to put them back)."""

    def resolve(value: str) -> str:
        # no path is built unless a reference fails
        target = mapping.get(value)
        if target is not None:
            return target
        if value.startswith(("urn:uuid:", "urn:oid:")):
            if transaction:
                where = _reference_path(entry, value)
                raise FHIRError(400, f"{where}: {value} is not the fullUrl of an entry of this Bundle",
                                code="not-found", expression=[where])
            return value
        if "?" in value and not value.startswith(("#", "http:", "https:")):
            return resolver.reference(value, lambda: _reference_path(entry, value))
        return value

    _rewrite(entry.resource, resolve, undo)


def _rewrite(node: object, resolve: Callable[[str], str], undo: Undo) -> None:
    # every reference resolved in place, keeping what it replaced: a stale resolution is undone and redone
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str):
                new = resolve(value)
                if new is not value:
                    node[key] = new
                    undo.append((node, key, value))
            elif isinstance(value, (dict, list)):
                _rewrite(value, resolve, undo)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, (dict, list)):
                _rewrite(item, resolve, undo)


def _reference_path(entry: _Entry, value: str) -> str:
    """Where in the Bundle the first reference ``value`` of an entry's resource is."""
    resource = entry.resource or {}
    inside = integrity.reference_path(resource, value)[len(str(resource.get("resourceType"))):]
    return f"{entry.where}.resource{inside}.reference" if inside else f"{entry.where}.resource"


# ---- results -----------------------------------------------------------------------------------


def _status(code: int) -> str:
    try:
        return f"{code} {HTTPStatus(code).phrase}"
    except ValueError:
        return str(code)


def _version_response(stored: StoredVersion, status: int, location: bool) -> dict:
    response: dict = {"status": _status(status)}
    if location:
        response["location"] = f"{stored.resource_type}/{stored.id}/_history/{stored.version}"
    response["etag"] = f'W/"{stored.version}"'
    response["lastModified"] = stored.last_updated
    return response


def _write_entry(result: w.Result, action: str, options: Options) -> dict:
    stored = result.version
    if action == w.DELETE:
        entry = {"response": {"status": _status(204)}}
        if stored is not None and result.outcome == "deleted":
            entry["response"]["etag"] = f'W/"{stored.version}"'
            entry["response"]["lastModified"] = stored.last_updated
        return entry
    assert stored is not None
    entry = {"fullUrl": f"{options.base}/{stored.resource_type}/{stored.id}"}
    if options.prefer_return == "representation" and stored.resource is not None:
        entry["resource"] = stored.resource
    entry["response"] = _version_response(stored, result.status, result.outcome in ("created", "updated"))
    if options.prefer_return == "OperationOutcome":
        text = f"{stored.resource_type}/{stored.id} {result.outcome} (version {stored.version})"
        entry["response"]["outcome"] = operation_outcome([issue("information", "informational", text)])
    return entry


def _error_entry(exc: FHIRError | auth.AccessDenied) -> dict:
    if isinstance(exc, auth.AccessDenied):
        return {"response": {"status": _status(exc.status),
                             "outcome": operation_outcome([issue("error", exc.code, exc.message)])}}
    return {"response": {"status": _status(exc.status), "outcome": exc.outcome()}}


# ---- GET entries -------------------------------------------------------------------------------


def _not_modified(entry: _Entry, stored: StoredVersion) -> bool:
    if_none_match = entry.request.get("ifNoneMatch")
    if isinstance(if_none_match, str):
        return if_none_match.strip().removeprefix("W/").strip('"') == str(stored.version)
    since = entry.request.get("ifModifiedSince")
    if not isinstance(since, str):
        return False
    try:
        moment = datetime.fromisoformat(w.normalize_instant(since).replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = parsedate_to_datetime(since)  # an HTTP date, as in the header
        except (TypeError, ValueError):
            raise _entry_error(entry.index, 400, f"ifModifiedSince {since!r} is not an instant", "invalid",
                               ".request.ifModifiedSince") from None
    modified = datetime.fromisoformat(stored.last_updated.replace("Z", "+00:00"))
    return modified.replace(microsecond=0) <= moment


def _read_entry(store: Store, entry: _Entry, options: Options) -> dict:
    assert entry.id is not None
    stored = store.read(entry.resource_type, entry.id, int(entry.vid) if entry.vid else None)
    if stored is None:
        raise not_found(entry.resource_type, entry.id)
    if stored.deleted:
        raise gone(entry.resource_type, entry.id, stored.version)
    options.allow("vread" if entry.vid else "read", entry.resource_type, stored.resource)
    if _not_modified(entry, stored):
        return {"response": _version_response(stored, 304, False)}
    result: dict = {"fullUrl": f"{options.base}/{entry.resource_type}/{entry.id}"}
    if entry.method == "GET":
        result["resource"] = stored.resource
    result["response"] = _version_response(stored, 200, False)
    return result


def _search_entry(store: Store, entry: _Entry, options: Options) -> dict:
    """A search entry is answered by the one search service, as ``GET [type]?...`` would be."""
    pairs = entry.query or []
    bundle = searchset(store, options.search_access(), entry.resource_type, pairs, options.search_settings())
    return {"resource": bundle, "response": {"status": _status(200)}}


def _get_entry(store: Store, entry: _Entry, options: Options) -> dict:
    return _read_entry(store, entry, options) if entry.id is not None else _search_entry(store, entry, options)


# ---- changes -----------------------------------------------------------------------------------


def _if_match(entry: _Entry) -> int | None:
    value = entry.request.get("ifMatch")
    if value is None:
        return None
    text = str(value).strip().removeprefix("W/").strip('"')
    if not text.isdigit():
        raise _entry_error(entry.index, 400, f"ifMatch {value!r} is not a version ETag like W/\"3\"", "invalid",
                           ".request.ifMatch")
    return int(text)


def _change(resolver: _Resolver, entry: _Entry, assigned: dict[int, str]) -> w.Change:
    """The write an entry asks for (POST entries take the id ``assigned`` to them beforehand)."""
    rtype = entry.resource_type
    if entry.method == "POST":
        return w.Change(w.CREATE, rtype, id=assigned.get(entry.index), resource=entry.resource)
    if entry.method == "PUT":
        if entry.query:
            condition = resolver.criteria(rtype, entry.query, f"{entry.where}.request.url")
            return w.Change(w.UPDATE, rtype, resource=entry.resource, condition=condition, if_match=_if_match(entry))
        return w.Change(w.UPDATE, rtype, id=entry.id, resource=entry.resource, if_match=_if_match(entry))
    if entry.method == "PATCH":
        condition = resolver.criteria(rtype, entry.query, f"{entry.where}.request.url") if entry.query else None
        document, fmt = _patch_operations(entry)
        return w.Change(w.PATCH, rtype, id=entry.id, patch=document, patch_format=fmt, condition=condition,
                        if_match=_if_match(entry))
    condition = resolver.criteria(rtype, entry.query, f"{entry.where}.request.url") if entry.query else None
    return w.Change(w.DELETE, rtype, id=entry.id, condition=condition, if_match=_if_match(entry))


def _if_none_exist(resolver: _Resolver, entry: _Entry) -> SearchQuery | None:
    """The criteria of a POST entry's ifNoneExist (None: a plain create)."""
    raw = entry.request.get("ifNoneExist")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _entry_error(entry.index, 400, "ifNoneExist is a query string", "invalid", ".request.ifNoneExist")
    where = f"{entry.where}.request.ifNoneExist"
    return resolver.criteria(entry.resource_type, parse_qsl(raw.lstrip("?"), keep_blank_values=True), where)


def _conditional_create(resolver: _Resolver, entry: _Entry) -> str | None:
    """The id an entry's ifNoneExist matches (None: create), 412 when it matches several."""
    criteria = _if_none_exist(resolver, entry)
    if criteria is None:
        return None
    where = f"{entry.where}.request.ifNoneExist"
    ids = resolver.matches(criteria, where)
    if len(ids) > 1:
        raise FHIRError(412, f"{where}: the condition matches several {entry.resource_type} resources",
                        code="duplicate", expression=[where])
    return ids[0] if ids else None


def _entry_of_change(exc: FHIRError, changes: list[tuple[_Entry, w.Change]]) -> _Entry | None:
    """Which entry made ``write()`` fail: its index if the write path says, else the first that fails validation."""
    index = getattr(exc, "change_index", None)
    if isinstance(index, int) and 0 <= index < len(changes):
        return changes[index][0]
    for entry, change in changes:
        if change.action in (w.CREATE, w.UPDATE):
            try:
                validate(change.resource, change.resource_type)
            except FHIRError:
                return entry
    return None


def _name_entry(exc: FHIRError, entry: _Entry) -> FHIRError:
    """The same error, each issue located in the Bundle (``Bundle.entry[49].resource.status``)."""
    prefix = f"{entry.where} ({entry.method} {entry.resource_type})"
    issues = exc.issues or [issue("error", exc.code, exc.diagnostics, exc.expression)]
    located = []
    for item in issues:
        item = dict(item)
        if not item.get("diagnostics", "").startswith(entry.where):
            item["diagnostics"] = f"{prefix}: {item.get('diagnostics', '')}"
        paths = [_in_bundle(p, entry) for p in item.get("expression", [])]
        item["expression"] = paths or [entry.where]
        located.append(item)
    return FHIRError(exc.status, located[0]["diagnostics"], code=exc.code, issues=located, headers=exc.headers)


def _in_bundle(path: str, entry: _Entry) -> str:
    if path.startswith("Bundle."):
        return path
    head, dot, rest = path.partition(".")
    if head == entry.resource_type:
        return f"{entry.where}.resource{dot}{rest}"
    return f"{entry.where}.resource.{path}"


# ---- processing --------------------------------------------------------------------------------


def _entries(bundle: object, options: Options) -> tuple[str, list]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FHIRError(400, "POST to the base URL takes a Bundle of type batch or transaction", code="invalid",
                        expression=["Bundle"])
    kind = bundle.get("type")
    if kind not in (BATCH, TRANSACTION):
        raise FHIRError(400, f"Bundle.type {kind!r}: this endpoint takes a batch or a transaction", code="invalid",
                        expression=["Bundle.type"])
    raw = bundle.get("entry", [])
    if not isinstance(raw, list):
        raise FHIRError(400, "Bundle.entry is a JSON array", code="structure", expression=["Bundle.entry"])
    if len(raw) > options.max_entries:
        raise FHIRError(413, f"The Bundle has {len(raw)} entries; this server takes at most {options.max_entries}"
                        " (RELAIS_MAX_BUNDLE_ENTRIES)", code="too-costly", expression=["Bundle.entry"])
    return kind, raw


def process(store: Store, bundle: object, options: Options) -> dict:
    """Run a batch or transaction Bundle; the batch-response or transaction-response Bundle."""
    kind, raw = _entries(bundle, options)
    if kind == TRANSACTION:
        entries = _transaction(store, raw, options)
    else:
        entries = _batch(store, raw, options)
    return {"resourceType": "Bundle", "id": new_id(), "type": f"{kind}-response", "entry": entries}


def _transaction(store: Store, raw: list, options: Options) -> list[dict]:
    if not store.supports_transactions:
        raise FHIRError(400, "This store cannot make a transaction all-or-nothing (MongoDB without a replica set):"
                        " send a batch, or run MongoDB as a replica set", code="not-supported",
                        expression=["Bundle.type"])
    entries = [_parse_entry(i, item, options.base, TRANSACTION) for i, item in enumerate(raw)]
    for entry in entries:
        if entry.method not in ("GET", "HEAD"):
            options.allow(_INTERACTION[entry.method], entry.resource_type, entry.resource)
        elif entry.id is None:
            options.allow("search", entry.resource_type, None)
        # A read is decided on the resource it finds, after the writes (reported in its entry).
    _no_duplicates(entries)
    for _ in range(_RESOLVE_ATTEMPTS):
        resolver, undo = _Resolver(store, access=options.search_access()), []
        changes, existing = _resolved(resolver, entries, undo)
        try:
            results = w.write(store, [change for _, change in changes], options.actor, acceptance=options.acceptance,
                              guard=resolver.guard, replacing=options.replacing, dangling=options.dangling)
        except w.Stale:
            _undo(undo)  # another writer changed what a condition matches: resolve again from the Bundle
            continue
        except FHIRError as exc:
            culprit = _entry_of_change(exc, changes)
            raise (_name_entry(exc, culprit) if culprit is not None else exc) from None
        break
    else:
        raise _too_busy()
    out: list[dict | None] = [None] * len(entries)
    for (entry, change), result in zip(changes, results, strict=True):
        out[entry.index] = _write_entry(result, change.action, options)
    for index, id in existing.items():
        entry = entries[index]
        stored = store.read(entry.resource_type, id)
        assert stored is not None
        out[index] = _write_entry(w.Result(200, "exists", stored, entry.resource_type, id), w.CREATE, options)
    # Reads come last and see the transaction's writes. Those are committed by now: a read that
    # fails (not found, refused) is reported in its entry rather than as if nothing had been written.
    for entry in entries:
        if entry.method in ("GET", "HEAD"):
            try:
                out[entry.index] = _get_entry(store, entry, options)
            except (FHIRError, auth.AccessDenied) as exc:
                out[entry.index] = _error_entry(exc)
    return [item for item in out if item is not None]


def _resolved(resolver: _Resolver, entries: list[_Entry], undo: Undo) -> tuple[list[tuple[_Entry, w.Change]],
                                                                             dict[int, str]]:
    """A transaction's changes, its entries' ids and references resolved; and the POST entries whose
    ifNoneExist matched (index -> id of the existing resource), which write nothing."""
    mapping: dict[str, str] = {}
    assigned: dict[int, str] = {}
    existing: dict[int, str] = {}
    for entry in entries:
        if entry.method == "POST":
            found = _conditional_create(resolver, entry)
            if found is not None:
                existing[entry.index] = found
            target = found or new_id()
            assigned[entry.index] = target
            if entry.full_url:
                mapping[entry.full_url] = f"{entry.resource_type}/{target}"
        elif entry.method == "PUT" and entry.full_url:
            if entry.id is not None:
                mapping[entry.full_url] = f"{entry.resource_type}/{entry.id}"
            else:
                where = f"{entry.where}.request.url"
                ids = resolver.matches(resolver.criteria(entry.resource_type, entry.query or [], where), where)
                if len(ids) > 1:
                    raise _entry_error(entry.index, 412, f"the condition matches several {entry.resource_type}",
                                       "duplicate", ".request.url")
                assert entry.resource is not None
                target = ids[0] if ids else str(entry.resource.get("id") or new_id())
                undo.append((entry.resource, "id", entry.resource.get("id", _MISSING)))
                entry.resource["id"] = target  # the write path checks it against the match again, atomically
                mapping[entry.full_url] = f"{entry.resource_type}/{target}"
    for entry in entries:
        if entry.method in ("POST", "PUT") and entry.index not in existing:
            try:
                _rewrite_references(resolver, entry, mapping, True, undo)
            except FHIRError as exc:
                raise _name_entry(exc, entry) from None
    changes: list[tuple[_Entry, w.Change]] = []
    for entry in sorted(entries, key=lambda e: _ORDER[e.method]):
        if entry.method in ("GET", "HEAD") or entry.index in existing:
            continue
        try:
            changes.append((entry, _change(resolver, entry, assigned)))
        except FHIRError as exc:
            raise _name_entry(exc, entry) from None
    return changes, existing


def _too_busy() -> FHIRError:
    return FHIRError(409, "Concurrent writers kept changing what this Bundle's conditions match; try again",
                     code="conflict")


def _no_duplicates(entries: list[_Entry]) -> None:
    seen: dict[str, int] = {}
    for entry in entries:
        if entry.method in ("GET", "HEAD") or entry.id is None:
            continue
        key = f"{entry.resource_type}/{entry.id}"
        if key in seen:
            raise _entry_error(entry.index, 400, f"{key} is also written by Bundle.entry[{seen[key]}]", "invalid",
                               ".request.url")
        seen[key] = entry.index
    full_urls: dict[str, int] = {}
    for entry in entries:
        if entry.full_url and entry.method in ("POST", "PUT"):
            if entry.full_url in full_urls:
                raise _entry_error(entry.index, 400, f"fullUrl {entry.full_url} is also the fullUrl of"
                                   f" Bundle.entry[{full_urls[entry.full_url]}]", "invalid", ".fullUrl")
            full_urls[entry.full_url] = entry.index


def _batch(store: Store, raw: list, options: Options) -> list[dict]:
    out: list[dict] = [{}] * len(raw)
    parsed: list[_Entry] = []
    for i, item in enumerate(raw):
        try:
            parsed.append(_parse_entry(i, item, options.base, BATCH))
        except FHIRError as exc:
            out[i] = _error_entry(exc)
    cache: dict[str, tuple[SearchQuery, list[str]]] = {}
    for entry in sorted(parsed, key=lambda e: _ORDER[e.method]):
        try:
            out[entry.index] = _batch_entry(store, entry, options, cache)
        except (FHIRError, auth.AccessDenied) as exc:
            out[entry.index] = _error_entry(exc)
    return out


def _batch_entry(store: Store, entry: _Entry, options: Options,
                 cache: dict[str, tuple[SearchQuery, list[str]]]) -> dict:
    if entry.method in ("GET", "HEAD"):
        return _get_entry(store, entry, options)
    options.allow(_INTERACTION[entry.method], entry.resource_type, entry.resource)
    # ifNoneExist is decided inside the write's transaction, as REST If-None-Exist is
    access = options.search_access()
    condition = _if_none_exist(_Resolver(store, access=access), entry) if entry.method == "POST" else None
    for _ in range(_RESOLVE_ATTEMPTS):
        resolver, undo = _Resolver(store, cache, access), []
        if entry.method in ("POST", "PUT"):
            _rewrite_references(resolver, entry, {}, False, undo)
        change = _change(resolver, entry, {})
        change.condition = condition or change.condition
        try:
            result = w.write(store, [change], options.actor, acceptance=options.acceptance, guard=resolver.guard,
                             replacing=options.replacing, dangling=options.dangling)[0]
        except w.Stale:
            _undo(undo)
            cache.clear()
            continue
        except FHIRError as exc:
            raise _name_entry(exc, entry) from None
        return _write_entry(result, change.action, options)
    raise _too_busy()
