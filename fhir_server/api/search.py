"""Search views: GET [type]?... and POST [type]/_search, answered as a searchset Bundle."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, Response, g, request

import auth

from ..errors import FHIRError
from ..search.parser import SearchError, parse
from .http import base_url, fhir_response, prefer
from .rest import allow, check_type, config, store

search = Blueprint("fhir_search", __name__)


def _run(resource_type: str, pairs: list[tuple[str, str]]) -> Response:
    check_type(resource_type)
    allow("search", resource_type)
    cfg = config()
    strict = prefer(request).get("handling") == "strict"
    try:
        query = parse(resource_type, pairs, default_count=cfg.default_count, max_count=cfg.max_count, strict=strict)
    except SearchError as exc:
        raise FHIRError(400, str(exc), code="invalid") from None
    try:
        result = store().search(query)
    except NotImplementedError as exc:
        raise FHIRError(400, str(exc), code="not-supported") from None
    found = [v for v in store().read_many(resource_type, result.ids) if auth.can_read(g.get("caller"), v.resource)]
    base = base_url()
    kept = [(k, v) for k, v in pairs if k not in ("_offset",)]
    links = [{"relation": "self", "url": f"{base}/{resource_type}?{urlencode(pairs)}"}]
    if result.total is None or query.offset + query.count < result.total:
        if len(result.ids) == query.count:
            links.append({"relation": "next", "url": f"{base}/{resource_type}?"
                          + urlencode([*kept, ("_offset", str(query.offset + query.count))])})
    bundle: dict = {"resourceType": "Bundle", "type": "searchset"}
    if result.total is not None:
        bundle["total"] = result.total
    bundle["link"] = links
    bundle["entry"] = [
        {"fullUrl": f"{base}/{v.resource_type}/{v.id}", "resource": v.resource, "search": {"mode": "match"}}
        for v in found
    ]
    return fhir_response(bundle)


@search.get("/<resource_type>")
def search_get(resource_type: str) -> Response:
    return _run(resource_type, list(request.args.items(multi=True)))


@search.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    return _run(resource_type, list(request.args.items(multi=True)) + list(request.form.items(multi=True)))
