"""Search views: GET [type]?..., POST [type]/_search and paging links ([base]?_getpages=...), as searchsets.

Thin: each view turns its request into values (the caller's access, the parameters, the settings)
and the one search service (``fhir_server.searching``) answers, as it does for Bundle GET entries.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, request

import auth

from .. import searching
from ..errors import FHIRError
from ..searching import paging
from .http import fhir_response, prefer
from .rest import allow, check_type, config, store

search = Blueprint("fhir_search", __name__)


def search_access() -> searching.Access:
    """The current caller's access, as the search service takes it."""
    caller = g.get("caller")
    return searching.Access(
        decide=allow,
        can_read=lambda resource: auth.can_read(caller, resource),
        sees_all=lambda resource_type: auth.sees_all(caller, resource_type),
        owner=caller.client_id if caller is not None else "",
    )


def search_settings() -> searching.Settings:
    return searching.Settings.from_config(config())


def searchset(resource_type: str, pairs: list[tuple[str, str]]) -> dict:
    """The searchset Bundle of ``resource_type?pairs`` for the current caller."""
    check_type(resource_type)
    strict = prefer(request).get("handling") == "strict"
    return searching.search(store(), search_access(), resource_type, pairs, search_settings(), strict=strict)


@search.get("")
@search.get("/")
def get_pages() -> Response:
    if paging.PAGES not in request.args:
        raise FHIRError(400, "GET [base] answers paging links (_getpages) only: search a type, GET [base]/Type?...",
                        code="not-supported")
    args = request.args
    return fhir_response(searching.page(store(), search_access(), search_settings(), args.get(paging.PAGES, ""),
                                        args.get(paging.OFFSET), args.get("_count")))  # fmt: skip


@search.get("/<resource_type>")
def search_get(resource_type: str) -> Response:
    return fhir_response(searchset(resource_type, list(request.args.items(multi=True))))


@search.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return fhir_response(searchset(resource_type, pairs))
