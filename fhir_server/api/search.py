"""Search views: GET [type]?..., POST [type]/_search, paging links ([base]?_getpages=...), a patient's
compartment (GET Patient/[id]/[type]?...) and searches across types (GET [base]?_type=...), as searchsets.

Thin: each view turns its request into values (the caller's access, the parameters, the settings)
and the one search service (``fhir_server.searching``) answers, as it does for Bundle GET entries.
"""

from __future__ import annotations

from flask import Blueprint, Response, request
from werkzeug.routing import BaseConverter

from .. import searching
from ..errors import FHIRError
from ..searching import paging
from .http import fhir_response, prefer
from .operations import add_capability
from .rest import check_id, check_type, config, search_access, store

search = Blueprint("fhir_search", __name__)


class CompartmentTypeConverter(BaseConverter):
    """The [type] of Patient/[id]/[type]: a type name or ``*``, never ``_history`` or ``$operation``,
    so that those routes keep their own paths."""

    regex = r"[A-Z][A-Za-z]{0,63}|\*"


CONVERTERS = {"compartment_type": CompartmentTypeConverter}


def search_settings() -> searching.Settings:
    return searching.Settings.from_config(config())


def searchset(resource_type: str, pairs: list[tuple[str, str]]) -> dict:
    """The searchset Bundle of ``resource_type?pairs`` for the current caller."""
    check_type(resource_type)
    strict = prefer(request).get("handling") == "strict"
    return searching.search(store(), search_access(), resource_type, pairs, search_settings(), strict=strict)


def _strict() -> bool:
    return prefer(request).get("handling") == "strict"


@search.get("")
@search.get("/")
def get_pages() -> Response:
    args = request.args
    if paging.PAGES not in args:
        if "_type" not in args:
            raise FHIRError(400, "GET [base] answers a search across types (GET [base]?_type=Patient,Observation&...) "
                                 "and paging links (_getpages): to search one type, GET [base]/Type?...",
                            code="not-supported")
        return fhir_response(searching.system_search(store(), search_access(), list(args.items(multi=True)),
                                                     search_settings(), strict=_strict()))
    return fhir_response(searching.page(store(), search_access(), search_settings(), args.get(paging.PAGES, ""),
                                        args.get(paging.OFFSET), args.get("_count")))  # fmt: skip


@search.get("/<resource_type>")
def search_get(resource_type: str) -> Response:
    return fhir_response(searchset(resource_type, list(request.args.items(multi=True))))


@search.post("/<resource_type>/_search")
def search_post(resource_type: str) -> Response:
    pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return fhir_response(searchset(resource_type, pairs))


@search.post("/_search")
def system_search_post() -> Response:
    pairs = list(request.args.items(multi=True)) + list(request.form.items(multi=True))
    return fhir_response(searching.system_search(store(), search_access(), pairs, search_settings(), strict=_strict()))


@search.get("/Patient/<id>/<compartment_type:resource_type>")
def compartment_search(id: str, resource_type: str) -> Response:
    check_id(id)
    return fhir_response(searching.compartment_search(store(), search_access(), id, resource_type,
                                                      list(request.args.items(multi=True)), search_settings(),
                                                      strict=_strict()))


@search.record_once
def _capability(state) -> None:
    add_capability(state.app, interactions=("search-system",))
