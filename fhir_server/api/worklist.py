"""``GET Task/$worklist``: the on-call coordinator's open triage alerts, ranked, with whom to call; answered
by the search service (``fhir_server.searching.worklist``)."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import searching
from .http import fhir_response, prefer
from .operations import add_capability
from .rest import search_access, store
from .search import search_settings

worklist = Blueprint("fhir_worklist", __name__)

DEFINITION = "http://relais.example/OperationDefinition/Task-worklist"


@worklist.get("/Task/$worklist")
def task_worklist() -> Response:
    strict = prefer(request).get("handling") == "strict"
    return fhir_response(searching.worklist(store(), search_access(), search_settings(),
                                            list(request.args.items(multi=True)), strict=strict))


@worklist.record_once
def _capability(state) -> None:
    add_capability(state.app, operations=(("worklist", DEFINITION),))
