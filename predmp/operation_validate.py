"""``POST DocumentReference/[id]/$validate-pre-dmp``: a doctor validates the draft; it is locked and queued for
the national record. The final DocumentReference, or an OperationOutcome saying why not (French, English)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g

from fhir_server.api.http import base_url, fhir_response, version_headers
from fhir_server.api.operations import add_capability
from fhir_server.api.rest import allow, check_id, store

from . import audit
from .actor import predmp_actor
from .state import QUEUED, export_state
from .validation import validate_draft

validate = Blueprint("predmp_validate", __name__)

DEFINITION = "https://relais.example/fhir/OperationDefinition/DocumentReference-validate-pre-dmp"


@validate.post("/DocumentReference/<id>/$validate-pre-dmp")
def validate_pre_dmp(id: str) -> Response:
    check_id(id)
    current = store().read("DocumentReference", id)
    allow("operation:validate-pre-dmp", "DocumentReference",
          current.resource if current is not None and not current.deleted else None)
    caller = g.get("caller")
    final = validate_draft(store(), id, caller.claims if caller is not None else None, base_url(),
                           predmp_actor(store()))
    state = export_state(final)
    audit.record(store(), final, QUEUED, state.get("date") or final["meta"]["lastUpdated"], None,
                 current_app.config["RELAIS"].dmp_endpoint)
    stored = store().read("DocumentReference", id)
    assert stored is not None
    return fhir_response(stored.resource, 200, version_headers(stored))


@validate.record_once
def _capability(state) -> None:
    add_capability(state.app, operations=(("validate-pre-dmp", DEFINITION),))
