"""``GET Patient/[id]/$everything``: the patient's compartment, answered by the search service."""

from __future__ import annotations

from flask import Blueprint, Response, request

from .. import searching
from .http import fhir_response
from .operations import add_capability
from .rest import check_id, store
from .search import search_access, search_settings

everything = Blueprint("fhir_everything", __name__)

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-everything"


@everything.get("/Patient/<id>/$everything")
def patient_everything(id: str) -> Response:
    check_id(id)
    args = request.args
    types = [t.strip() for t in args.get("_type", "").split(",") if t.strip()]
    bundle = searching.everything(store(), search_access(), search_settings(), id, types=types,
                                  since=args.get("_since"), count=args.get("_count"), offset=args.get("_offset"),
                                  request_pairs=list(args.items(multi=True)), start=args.get("start"),
                                  end=args.get("end"))  # fmt: skip
    return fhir_response(bundle)


@everything.record_once
def _capability(state) -> None:
    add_capability(state.app, operations=(("everything", DEFINITION),))
