"""A doctor validates a pre-DMP draft: the document becomes final, locked, and queued for the national record.

``refusal_reason`` is the pure decision (who may validate what); ``validate_draft`` writes the final
document, the Provenance of the validation and the export job in one store transaction, as
``relais-predmp``: once it answers, the job exists, whatever crashes next.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import auth
from fhir_server import write as w
from fhir_server.actor import Actor
from fhir_server.codes import IDNPS, QUALIFIED_IDENTITY_STATUSES, RPPS
from fhir_server.errors import FHIRError
from fhir_server.fhirjson import loads
from fhir_server.ids import new_id
from fhir_server.locking import LOCK_TAG
from fhir_server.store.base import Store

from . import drafts, messages, narrative
from .actor import decide
from .document import validated
from .state import QUEUED, with_state

EXPORT_KIND = "dmp-export"
PROVENANCE_ACTIVITY = {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "LA",
                       "display": "legal authenticator"}
ATTESTER = {"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "attester",
            "display": "Attester"}


def practitioner_id(claims: dict | None) -> str | None:
    """The Practitioner id a token's ``fhirUser`` claim names (``Practitioner/ID`` or an absolute URL to it)."""
    value = (claims or {}).get("fhirUser")
    if not isinstance(value, str):
        return None
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == "Practitioner" and parts[-1]:
        return parts[-1]
    return None


def professional_identifier(practitioner: dict | None) -> dict | None:
    """The practitioner's RPPS, else IDNPS, identifier: what makes them a health professional here."""
    found = [i for i in (practitioner or {}).get("identifier") or [] if i.get("system") in (RPPS, IDNPS)
             and i.get("value")]
    found.sort(key=lambda i: (RPPS, IDNPS).index(i["system"]))
    return found[0] if found else None


def refusal_reason(docref: dict, current: list[str], practitioner: dict | None,
                   patient: dict | None) -> FHIRError | None:
    """Why this validation is refused (None: it may go ahead). Checked in this order: who, which draft, INS."""
    if professional_identifier(practitioner) is None:
        return messages.refusal(403, "forbidden", messages.NOT_PRACTITIONER)
    if docref.get("docStatus") == "final":
        return messages.refusal(409, "conflict", messages.ALREADY_FINAL)
    if docref.get("status") != "current" or docref["id"] not in current:
        why = "il a été remplacé" if docref.get("status") == "superseded" else "il n'est plus en vigueur"
        return messages.refusal(409, "conflict", messages.NOT_CURRENT, why=why)
    status = narrative.identity_status(patient or {})
    if narrative.ins(patient or {}) is None:
        return messages.refusal(422, "business-rule", messages.NO_INS)
    if status not in QUALIFIED_IDENTITY_STATUSES:
        return messages.refusal(422, "business-rule", messages.NOT_QUALIFIED, status=status or "non renseigné")
    return None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def validate_draft(store: Store, docref_id: str, claims: dict | None, base: str, actor: Actor) -> dict:
    """Validate the draft ``docref_id`` for the caller whose token has ``claims``; the final DocumentReference.

    Raises FHIRError (404 unknown, 422 not a pre-DMP; refusals from ``refusal_reason``).
    """
    stored = store.read("DocumentReference", docref_id)
    if stored is None or stored.deleted or stored.resource is None:
        raise FHIRError(404, f"DocumentReference/{docref_id} est inconnu (is not known)", code="not-found")
    docref = stored.resource
    if not drafts.is_predmp(docref):
        raise messages.refusal(422, "business-rule", messages.NOT_A_PREDMP, id=docref_id)
    pid = practitioner_id(claims)
    practitioner = store.read("Practitioner", pid) if pid else None
    practitioner_resource = practitioner.resource if practitioner and not practitioner.deleted else None
    patient_id = docref["subject"]["reference"].split("/")[1]
    patient = store.read("Patient", patient_id)
    current = drafts.current_drafts(store, patient_id)
    refused = refusal_reason(docref, current, practitioner_resource,
                             patient.resource if patient and not patient.deleted else None)
    if refused is not None:
        raise refused
    assert practitioner_resource is not None and pid is not None
    now = _now()
    binary_id = docref["content"][0]["attachment"]["url"].split("/")[-1]
    binary = store.read("Binary", binary_id)
    if binary is None or binary.resource is None:
        raise FHIRError(409, f"Le contenu du pré-DMP (Binary/{binary_id}) est introuvable "
                        f"(the pre-DMP's content is missing)", code="conflict")
    document = loads(base64.b64decode(binary.resource["data"]))
    final = validated(document, practitioner_resource, base, now, patient.resource if patient else None)
    data = drafts.content_bytes(final)
    who = {"reference": f"Practitioner/{pid}", "display": narrative.practitioner_name(practitioner_resource)}
    final_docref = {
        **docref,
        "meta": {**docref.get("meta", {}), "tag": [*(docref.get("meta") or {}).get("tag", []), dict(LOCK_TAG)]},
        "docStatus": "final",
        "author": [who],
        "authenticator": who,
        "description": "Pré-DMP validé par un médecin",
        "content": [{**docref["content"][0], "attachment": drafts.attachment(data, binary_id, now)}],
    }
    final_docref = with_state(final_docref, QUEUED, now, since=now, attempts=0)
    final_binary = drafts.binary(binary_id, docref_id, data, locked=True)
    provenance = {
        "resourceType": "Provenance",
        "target": [{"reference": f"DocumentReference/{docref_id}/_history/{stored.version + 1}"},
                   {"reference": f"Binary/{binary_id}/_history/{binary.version + 1}"}],
        "recorded": now,
        "activity": {"coding": [PROVENANCE_ACTIVITY], "text": "Validation du pré-DMP par un médecin"},
        "agent": [{"type": {"coding": [ATTESTER]}, "who": who}],
        "reason": [{"text": "Validation médicale du pré-DMP avant envoi au DMP"}],
    }
    changes = [
        w.Change(w.UPDATE, "Binary", id=binary_id, resource=final_binary, if_match=binary.version),
        w.Change(w.UPDATE, "DocumentReference", id=docref_id, resource=final_docref, if_match=stored.version),
        w.Change(w.CREATE, "Provenance", id=new_id(), resource=provenance),
    ]
    for change in changes:
        decide(actor, change.action, change.resource_type, change.resource)

    def still_current(txn) -> None:
        if docref_id not in drafts.current_drafts(txn, patient_id, in_transaction=True):
            raise messages.refusal(409, "conflict", messages.NOT_CURRENT, why="il vient d'être remplacé")

    job = {"kind": EXPORT_KIND, "document": docref_id, "patient": patient_id, "queued_at": now}
    # If-Match on both: a concurrent validation or rebuild makes this one fail (412) rather than both win.
    results = w.write(store, changes, actor, guard=still_current, jobs=[job])
    auth.audit_write(store, actor, results, base)
    return results[1].version.resource  # type: ignore[union-attr]
