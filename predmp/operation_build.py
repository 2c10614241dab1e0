"""``POST Patient/[id]/$pre-dmp``: build (or rebuild) the patient's pre-DMP draft; the new DocumentReference."""

from __future__ import annotations

from flask import Blueprint, Response

from fhir_server.api.http import base_url, fhir_response, version_headers
from fhir_server.api.operations import add_capability
from fhir_server.api.rest import allow, check_id, store
from fhir_server.errors import FHIRError

from .actor import predmp_actor
from .drafts import build_draft

build = Blueprint("predmp_build", __name__)

DEFINITION = "https://relais.example/fhir/OperationDefinition/Patient-pre-dmp"


@build.post("/Patient/<id>/$pre-dmp")
def pre_dmp(id: str) -> Response:
    check_id(id)
    patient = store().read("Patient", id)
    if patient is None or patient.deleted:
        raise FHIRError(404, f"Patient/{id} est inconnu (is not known)", code="not-found")
    allow("read", "Patient", patient.resource)
    # The caller asks; the platform (relais-predmp) writes. Asking needs create and update on DocumentReference.
    allow("operation:pre-dmp", "DocumentReference")
    draft = build_draft(store(), id, base_url(), predmp_actor(store()))
    stored = store().read("DocumentReference", draft.document_reference["id"])
    assert stored is not None and stored.resource is not None
    headers = {**version_headers(stored), "Location": f"{base_url()}/DocumentReference/{stored.id}/_history/1"}
    return fhir_response(stored.resource, 201, headers)


@build.record_once
def _capability(state) -> None:
    add_capability(state.app, operations=(("pre-dmp", DEFINITION),))
