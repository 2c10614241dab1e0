"""FHIR R4 RESTful interactions: create, read, vread, update, patch, delete, history, conditionals."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, g, request
from werkzeug.exceptions import MethodNotAllowed

import auth

from .. import patch as patch_formats
from .. import write as w
from ..errors import FHIRError, gone, issue, not_found, operation_outcome
from ..resources import is_supported, valid_id, validate
from ..search.query import SearchQuery
from ..search.summary import select_elements, summarize
from ..searching import Access, conditional_criteria
from ..store.base import Store, StoredVersion
from ..subscriptions.hook import Acceptance
from .http import (
    base_url,
    fhir_response,
    is_whole,
    json_body,
    parse_etag,
    prefer,
    query_pairs,
    version_headers,
)

rest = Blueprint("fhir_rest", __name__)


def store() -> Store:
    return current_app.extensions["relais_store"]


def config():
    return current_app.config["RELAIS"]


# System-level endpoints that the [type] routes also match for the methods they do not take.
_READ_ONLY_ENDPOINTS = ("metadata", "_history")


def check_type(resource_type: str) -> None:
    if resource_type in _READ_ONLY_ENDPOINTS:
        raise MethodNotAllowed(valid_methods=["GET", "HEAD"])
    if not is_supported(resource_type):
        raise FHIRError(404, f"Unknown or unsupported resource type {resource_type!r}", code="not-supported")


def check_id(id: str) -> None:
    if id.startswith("$"):  # [type]/$name: an operation this server does not declare
        raise FHIRError(404, f"No operation {id} on this server (see GET [base]/metadata)", code="not-supported")
    if not valid_id(id):
        raise FHIRError(400, f"{id!r} is not a valid FHIR id", code="invalid")


ACCEPTANCE = "relais_acceptance"


def acceptance() -> Acceptance:
    """How this app accepts Subscriptions (built once by ``api.register``)."""
    return current_app.extensions[ACCEPTANCE]


def allow(interaction: str, resource_type: str | None, resource: dict | None = None) -> None:
    """Decide ``interaction`` for the request's caller, record it for its AuditEvents, raise AccessDenied
    (403, or 405 for what the type never takes) on a refusal. An update by a restricted caller is decided
    on the version it replaces, read here."""
    caller = g.get("caller")
    replaced = auth.UNREAD
    if auth.needs_replaced(caller, interaction, resource_type):
        assert resource_type is not None
        replaced = w.replaced_body(store(), resource_type, resource)
    refusal = auth.refusal(caller, interaction, resource_type, resource, replaced)
    auth.record_decision(interaction, resource_type, resource, refusal)
    if refusal is not None:
        raise auth.denial(interaction, resource_type, refusal)


def may_replace(interaction: str, resource_type: str, resource: dict, replaced: dict | None) -> None:
    """The write path's call (``write.Replacing``), inside its transaction: an update decided on the version
    it replaces (a conditional update's match is known only there), a patch on the resource it makes (a
    patient-scoped client may not patch a resource out of its patient's compartment)."""
    caller = g.get("caller")
    if caller is None:
        return
    refusal = auth.refusal(caller, interaction, resource_type, resource, replaced)
    auth.record_decision(interaction, resource_type, resource, refusal)
    if refusal is not None:
        raise auth.denial(interaction, resource_type, refusal)


def may_search(caller: auth.Caller | None, resource_type: str) -> str | None:
    """The decision a Subscription's criteria need (``Acceptance.may_search``), recorded as REST ones are."""
    refusal = auth.refusal(caller, "search", resource_type)
    auth.record_decision("search", resource_type, None, refusal)
    return refusal


def resource_url(stored: StoredVersion) -> str:
    return f"{base_url()}/{stored.resource_type}/{stored.id}"


def _write_response(result: w.Result) -> Response:
    """The answer to create/update/patch, honouring Prefer: return=..."""
    stored = result.version
    assert stored is not None and stored.resource is not None
    headers = version_headers(stored)
    if result.status == 201 or result.outcome == "created":
        headers["Location"] = f"{resource_url(stored)}/_history/{stored.version}"
    wanted = prefer(request).get("return", "representation")
    if wanted == "minimal":
        return fhir_response(None, result.status, headers)
    if wanted == "OperationOutcome":
        text = f"{stored.resource_type}/{stored.id} {result.outcome} (version {stored.version})"
        return fhir_response(operation_outcome([issue("information", "informational", text)]), result.status, headers)
    return fhir_response(stored.resource, result.status, headers)


def _resource_body(resource_type: str) -> dict:
    """The request's resource, validated: access decisions only ever see well-formed resources."""
    body = json_body(request)
    validate(body, resource_type)
    assert isinstance(body, dict)
    return body


def _one(change: w.Change) -> w.Result:
    return w.write(store(), [change], g.get("caller"), acceptance=acceptance(), replacing=may_replace,
                   dangling=config().allow_dangling_references)[0]


# ---- type level -------------------------------------------------------------------------------


def search_access() -> Access:
    """The current caller's access, as the search service and conditional criteria take it."""
    caller = g.get("caller")
    return Access(
        decide=allow,
        can_read=lambda resource: auth.can_read(caller, resource),
        sees_all=lambda resource_type: auth.sees_all(caller, resource_type),
        owner=caller.client_id if caller is not None else "",
    )


def criteria(resource_type: str, pairs: list[tuple[str, str]]) -> SearchQuery:
    """A conditional interaction's criteria, their chains through what the caller may read."""
    return conditional_criteria(resource_type, pairs, store=store(), access=search_access())


@rest.post("/<resource_type>")
def create(resource_type: str) -> Response:
    check_type(resource_type)
    body = _resource_body(resource_type)
    allow("create", resource_type, body)
    change = w.Change(w.CREATE, resource_type, resource=body, condition=_create_condition(resource_type),
                      validated=True)
    return _write_response(_one(change))


def _create_condition(resource_type: str) -> SearchQuery | None:
    """A create's condition: the If-None-Exist header, or criteria in the URL's query string.

    ``POST Patient?identifier=...`` is how fhirpy's ``get_or_create`` asks for a conditional create (as
    Aidbox takes it); ignoring the criteria would create a duplicate. Both, and different, is a 400.
    """
    header = request.headers.get("If-None-Exist")
    pairs = [(k, v) for k, v in request.args.items(multi=True) if not k.startswith("_format") and k != "_pretty"]
    if header is not None and pairs and sorted(query_pairs(header)) != sorted(pairs):
        raise FHIRError(400, "The If-None-Exist header and the URL's query string give different criteria",
                        code="invalid")
    if header is not None:
        return criteria(resource_type, query_pairs(header))
    return criteria(resource_type, pairs) if pairs else None


@rest.put("/<resource_type>")
def conditional_update(resource_type: str) -> Response:
    check_type(resource_type)
    condition = criteria(resource_type, list(request.args.items(multi=True)))
    body = _resource_body(resource_type)
    allow("update", resource_type, body)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    change = w.Change(w.UPDATE, resource_type, resource=body, condition=condition, if_match=if_match,
                      validated=True)
    return _write_response(_one(change))


@rest.patch("/<resource_type>")
def conditional_patch(resource_type: str) -> Response:
    check_type(resource_type)
    condition = criteria(resource_type, list(request.args.items(multi=True)))
    allow("patch", resource_type)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    document, fmt = _patch_body()
    change = w.Change(w.PATCH, resource_type, patch=document, patch_format=fmt, condition=condition,
                      if_match=if_match)
    return _write_response(_one(change))


@rest.delete("/<resource_type>")
def conditional_delete(resource_type: str) -> Response:
    check_type(resource_type)
    condition = criteria(resource_type, list(request.args.items(multi=True)))
    allow("delete", resource_type)
    return _delete_response(_one(w.Change(w.DELETE, resource_type, condition=condition)))


# ---- instance level ---------------------------------------------------------------------------


def _read_current(resource_type: str, id: str) -> StoredVersion:
    check_type(resource_type)
    check_id(id)
    stored = store().read(resource_type, id)
    if stored is None:
        raise not_found(resource_type, id)
    if stored.deleted:
        raise gone(resource_type, id, stored.version)
    return stored


def _not_modified(stored: StoredVersion) -> bool:
    """Whether If-None-Match or If-Modified-Since let a read answer 304."""
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match is not None:
        return parse_etag(if_none_match, "If-None-Match") == stored.version
    since = request.if_modified_since
    if since is None:
        return False
    # HTTP dates have whole seconds: compare at that precision.
    modified = datetime.fromisoformat(stored.last_updated.replace("Z", "+00:00")).replace(microsecond=0)
    return modified <= since


_READ_SUMMARIES = ("true", "text", "data", "false")


def shaped(resource: dict) -> dict:
    """The resource as the read's ``_elements`` or ``_summary`` asks (as a search shows it), else whole."""
    elements = tuple(e.strip() for value in request.args.getlist("_elements") for e in value.split(",") if e.strip())
    if elements:
        return select_elements(resource, elements)
    mode = request.args.get("_summary")
    if mode is not None and mode not in _READ_SUMMARIES:
        raise FHIRError(400, f"_summary on a read takes one of {', '.join(_READ_SUMMARIES)}", code="invalid")
    return summarize(resource, mode)


@rest.get("/<resource_type>/<id>")
def read(resource_type: str, id: str) -> Response:
    stored = _read_current(resource_type, id)
    allow("read", resource_type, stored.resource)
    return read_response(stored)


def read_response(stored: StoredVersion) -> Response:
    """The answer to a read of ``stored`` (already allowed): 304 when the client has it, else its JSON."""
    if _not_modified(stored):
        return fhir_response(None, 304, version_headers(stored))
    return fhir_response(shaped(stored.resource or {}), 200, version_headers(stored))


@rest.get("/<resource_type>/<id>/_history/<vid>")
def vread(resource_type: str, id: str, vid: str) -> Response:
    stored = read_version(resource_type, id, vid)
    return fhir_response(shaped(stored.resource or {}), 200, version_headers(stored))


def read_version(resource_type: str, id: str, vid: str) -> StoredVersion:
    """Version ``vid`` of a resource, once the caller is allowed to vread it (404, 410, 400, 403 otherwise)."""
    check_type(resource_type)
    check_id(id)
    if not is_whole(vid):
        raise FHIRError(400, f"{vid!r} is not a version id", code="invalid")
    stored = store().read(resource_type, id, int(vid))
    if stored is None:
        raise FHIRError(404, f"{resource_type}/{id} has no version {vid}", code="not-found")
    if stored.deleted:
        raise gone(resource_type, id, stored.version)
    allow("vread", resource_type, stored.resource)
    return stored


@rest.put("/<resource_type>/<id>")
def update(resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_id(id)
    body = _resource_body(resource_type)
    allow("update", resource_type, body)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    change = w.Change(w.UPDATE, resource_type, id=id, resource=body, if_match=if_match, validated=True)
    return _write_response(_one(change))


def _patch_body() -> tuple[list | dict, str]:
    """The patch document and its format (JSON Patch, merge patch or FHIRPath Patch), as the client sent it."""
    body = json_body(request)
    fmt = patch_formats.format_of(request.mimetype, body)
    if not isinstance(body, (list, dict)):
        raise FHIRError(400, "A patch document is a JSON array or object", code="structure")
    return body, fmt


@rest.patch("/<resource_type>/<id>")
def patch(resource_type: str, id: str) -> Response:
    # Decided on the stored resource: patient-scoped and granular scopes depend on its content.
    allow("patch", resource_type, _read_current(resource_type, id).resource)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    document, fmt = _patch_body()
    return _write_response(_one(w.Change(w.PATCH, resource_type, id=id, patch=document, patch_format=fmt,
                                         if_match=if_match)))


def _delete_response(result: w.Result) -> Response:
    headers = version_headers(result.version) if result.version is not None and result.outcome == "deleted" else {}
    if prefer(request).get("return") == "OperationOutcome":
        target = f"{result.resource_type}/{result.id}" if result.id else result.resource_type
        text = f"{target} deleted" if result.outcome == "deleted" else f"Nothing to delete ({target})"
        return fhir_response(operation_outcome([issue("information", "informational", text)]), 200, headers)
    return fhir_response(None, 204, headers)


@rest.delete("/<resource_type>/<id>")
def delete(resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_id(id)
    current = store().read(resource_type, id)
    allow("delete", resource_type, current.resource if current is not None else None)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    return _delete_response(_one(w.Change(w.DELETE, resource_type, id=id, if_match=if_match)))


# ---- history ----------------------------------------------------------------------------------


def _history_bundle(resource_type: str | None, id: str | None) -> Response:
    cfg = config()
    count = _count(request.args.get("_count"), cfg.default_count, cfg.max_count)
    since = request.args.get("_since")
    if since is not None:
        try:
            since = w.normalize_instant(since)
        except ValueError:
            raise FHIRError(400, f"_since={since!r} is not an instant", code="invalid") from None
    cursor = request.args.get("_cursor")
    try:
        page = store().history(resource_type, id, since, cursor, count)
    except ValueError:
        raise FHIRError(400, f"_cursor={cursor!r} is not a paging cursor of this server", code="invalid") from None
    base = base_url()
    path = "/".join(p for p in (resource_type, id, "_history") if p)
    self_args = {k: v for k, v in request.args.items() if k not in ("_cursor",)}
    links = [{"relation": "self", "url": _url(f"{base}/{path}", request.args.items())},
             {"relation": "first", "url": _url(f"{base}/{path}", self_args.items())}]
    if page.next_cursor is not None:
        next_args = [*self_args.items(), ("_cursor", page.next_cursor)]
        links.append({"relation": "next", "url": _url(f"{base}/{path}", next_args)})
    caller = g.get("caller")
    entries = [
        _history_entry(base, v)
        for v in page.entries
        if auth.can_read(caller, v.resource or {"resourceType": v.resource_type, "id": v.id})
    ]
    bundle = {"resourceType": "Bundle", "type": "history", "total": page.total, "link": links, "entry": entries}
    return fhir_response(bundle)


def _count(raw: str | None, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not is_whole(raw):
        raise FHIRError(400, f"_count={raw!r} is not a non-negative integer", code="invalid")
    return max(1, min(int(raw), maximum))


def _url(path: str, args) -> str:
    query = urlencode(list(args))
    return f"{path}?{query}" if query else path


_STATUS_TEXT = {"POST": "201 Created", "PUT": "200 OK", "PATCH": "200 OK", "DELETE": "204 No Content"}


def _history_entry(base: str, v: StoredVersion) -> dict:
    method = v.method or "PUT"
    status = "201 Created" if v.version == 1 and method in ("POST", "PUT") else _STATUS_TEXT.get(method, "200 OK")
    entry: dict = {"fullUrl": f"{base}/{v.resource_type}/{v.id}"}
    if v.resource is not None:
        entry["resource"] = v.resource
    entry["request"] = {"method": method, "url": v.resource_type if method == "POST" else f"{v.resource_type}/{v.id}"}
    entry["response"] = {"status": status, "etag": f'W/"{v.version}"', "lastModified": v.last_updated}
    return entry


@rest.get("/<resource_type>/<id>/_history")
def history_instance(resource_type: str, id: str) -> Response:
    check_type(resource_type)
    check_id(id)
    allow("history-instance", resource_type)
    if store().read(resource_type, id) is None:
        raise not_found(resource_type, id)
    return _history_bundle(resource_type, id)


@rest.get("/<resource_type>/_history")
def history_type(resource_type: str) -> Response:
    check_type(resource_type)
    allow("history-type", resource_type)
    return _history_bundle(resource_type, None)


@rest.get("/_history")
def history_system() -> Response:
    allow("history-system", None)
    return _history_bundle(None, None)
