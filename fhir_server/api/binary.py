"""Binary with its native content type (R4 binary.html#rest), as HAPI FHIR and Medplum serve it.

- ``POST /fhir/Binary`` (or ``PUT /fhir/Binary/{id}``) with a body of any non-FHIR content type stores a
  Binary: ``contentType`` from the request, ``data`` its bytes in base64, ``securityContext`` from the
  ``X-Security-Context`` header (``Patient/123``).
- ``GET /fhir/Binary/{id}`` answers the raw bytes with the Binary's content type unless the client asks
  for FHIR by name (``Accept: application/fhir+json``, ``application/json``, or ``_format``); then the
  Binary resource as JSON, like any read.

Reading a Binary needs read access to it and, when it has a ``securityContext``, to the resource that
context names (R4: "the Binary is treated as if it were that resource for access control").
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Flask, Request, Response, g, request
from werkzeug.routing import BaseConverter

from .. import write as w
from ..errors import FHIRError
from ..resources import is_supported, valid_id, validate
from ..store.base import StoredVersion
from .http import base_url, fhir_response, parse_etag, version_headers
from .rest import (
    _not_modified,
    _one,
    _read_current,
    _write_response,
    allow,
    read_response,
    read_version,
    shaped,
    store,
)
from .rest import create as create_resource
from .rest import update as update_resource

binary = Blueprint("fhir_binary", __name__)

SECURITY_CONTEXT_HEADER = "X-Security-Context"
# What a client names to get the Binary resource rather than its content; a wildcard is not naming.
_FHIR_TYPES = {"application/fhir+json", "application/json", "application/json+fhir", "text/json",
               "application/fhir+xml", "application/xml+fhir"}
# Bodies that are a Binary resource, not content: FHIR JSON (XML gets 415 as everywhere else).
_RESOURCE_BODIES = _FHIR_TYPES - {"text/json"}


class FhirId(BaseConverter):
    """A FHIR id in a URL: ``/fhir/Binary/_history`` and ``/fhir/Binary/$op`` go to the generic routes."""

    regex = r"[A-Za-z0-9\-.]{1,64}"


def install(app: Flask) -> None:
    """Serve Binary content at /fhir/Binary (before the generic [type] routes, which it defers to for FHIR)."""
    app.url_map.converters["fhirid"] = FhirId
    app.register_blueprint(binary, url_prefix="/fhir")


def raw_exchange(req: Request) -> bool:
    """Whether ``req`` sends or asks for a Binary's content rather than FHIR (no FHIR negotiation then)."""
    parts = req.path.split("/")
    if not (3 <= len(parts) <= 6 and parts[1] == "fhir" and parts[2] == "Binary"):
        return False
    if req.method == "POST" and len(parts) == 3 or req.method == "PUT" and len(parts) == 4:
        return bool(req.mimetype) and req.mimetype not in _RESOURCE_BODIES
    if req.method in ("GET", "HEAD") and len(parts) in (4, 6):
        return _wants_content(req)
    return False


def _wants_content(req: Request) -> bool:
    if "_format" in req.args or not req.headers.get("Accept"):
        return False
    named = {value.split(";")[0].strip().lower() for value, quality in req.accept_mimetypes if quality > 0}
    return not named & _FHIR_TYPES


# ---- writes -----------------------------------------------------------------------------------


def _binary_from_request(id: str | None) -> dict:
    """The Binary a raw request body makes (validated: access decisions only see well-formed resources)."""
    resource: dict = {"resourceType": "Binary"}
    if id is not None:
        resource["id"] = id
    resource["contentType"] = (request.content_type or "").strip()
    context = request.headers.get(SECURITY_CONTEXT_HEADER)
    if context is not None:
        rtype, _, rid = context.strip().partition("/")
        if not (is_supported(rtype) and valid_id(rid)):
            raise FHIRError(400, f"{SECURITY_CONTEXT_HEADER}: {context!r} is not a reference like Patient/123",
                            code="invalid")
        resource["securityContext"] = {"reference": f"{rtype}/{rid}"}
    data = request.get_data(cache=False)  # beyond RELAIS_MAX_BODY_BYTES werkzeug answers 413 first
    if data:
        resource["data"] = base64.b64encode(data).decode("ascii")
    validate(resource, "Binary")
    return resource


@binary.post("/Binary")
def create() -> Response:
    if not raw_exchange(request):
        return create_resource("Binary")
    resource = _binary_from_request(None)
    allow("create", "Binary", resource)
    return _write_response(_one(w.Change(w.CREATE, "Binary", resource=resource, validated=True)))


@binary.put("/Binary/<fhirid:id>")
def update(id: str) -> Response:
    if not raw_exchange(request):
        return update_resource("Binary", id)
    resource = _binary_from_request(id)
    allow("update", "Binary", resource)
    if_match = parse_etag(request.headers.get("If-Match"), "If-Match")
    change = w.Change(w.UPDATE, "Binary", id=id, resource=resource, if_match=if_match, validated=True)
    return _write_response(_one(change))


# ---- reads ------------------------------------------------------------------------------------


def _check_security_context(resource: dict) -> None:
    """Refuse (403) a Binary whose securityContext names a resource the caller may not read."""
    if g.get("caller") is None:
        return  # authentication is off
    reference = (resource.get("securityContext") or {}).get("reference")
    if not isinstance(reference, str):
        return
    local = reference.removeprefix(base_url() + "/")
    rtype, _, rid = local.partition("/")
    if not (is_supported(rtype) and valid_id(rid)):
        return  # another server's resource: the Binary's own decision stands
    target = store().read(rtype, rid)
    if target is not None and not target.deleted:
        allow("read", rtype, target.resource)


def _content(stored: StoredVersion) -> Response:
    """The Binary's bytes with its own content type; sandboxed, so HTML or SVG content runs no script here."""
    resource = stored.resource or {}
    try:
        data = base64.b64decode(resource.get("data") or "", validate=True)
    except (binascii.Error, ValueError):
        raise FHIRError(500, "The stored Binary data is not base64", code="exception") from None
    response = Response(data, 200, headers=version_headers(stored))
    response.headers["Content-Type"] = resource.get("contentType") or "application/octet-stream"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    return response


@binary.get("/Binary/<fhirid:id>")
def read(id: str) -> Response:
    stored = _read_current("Binary", id)
    allow("read", "Binary", stored.resource)
    _check_security_context(stored.resource or {})
    if not raw_exchange(request):
        return read_response(stored)
    if _not_modified(stored):
        return Response(None, 304, headers=version_headers(stored))
    return _content(stored)


@binary.get("/Binary/<fhirid:id>/_history/<vid>")
def vread(id: str, vid: str) -> Response:
    stored = read_version("Binary", id, vid)
    _check_security_context(stored.resource or {})
    if raw_exchange(request):
        return _content(stored)
    return fhir_response(shaped(stored.resource or {}), 200, version_headers(stored))
