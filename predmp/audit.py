"""An AuditEvent for each state of a pre-DMP's export (queued, sent, refused, dead): the IHE ITI-65 source's
audit record, agent ``relais-predmp``, naming the document and the patient; the reason in French."""

from __future__ import annotations

from typing import Any

from fhir_server import write as w
from fhir_server.actor import SERVER
from fhir_server.audit_origin import CLIENT_ID_SYSTEM, SERVER_TAG
from fhir_server.ids import new_id

from .actor import KIND
from .state import DEAD, LABELS, REFUSED

DCM = "http://dicom.nema.org/resources/ontology/DCM"
EXPORT = {"system": DCM, "code": "110106", "display": "Export"}
ITI_65 = {"system": "urn:ihe:event-type-code", "code": "ITI-65", "display": "Provide Document Bundle"}
_OUTCOME = {REFUSED: "4", DEAD: "8"}  # minor failure: the recipient said no; serious: it never answered


def export_event(docref: dict, status: str, when: str, reason: str | None, endpoint: str) -> dict:
    """The AuditEvent of ``docref``'s export reaching ``status`` (pure)."""
    patient = (docref.get("subject") or {}).get("reference")
    description = LABELS[status] + (f" : {reason}" if reason else "")
    entities: list[dict[str, Any]] = [{
        "what": {"reference": f"DocumentReference/{docref['id']}"},
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2",
                 "display": "System Object"},
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "20", "display": "Job"},
        "description": description,
    }]
    if patient:
        entities.append({"what": {"reference": patient},
                         "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "1",
                                  "display": "Person"},
                         "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1",
                                  "display": "Patient"}})
    return {
        "resourceType": "AuditEvent",
        "id": new_id(),
        "meta": {"tag": [dict(SERVER_TAG)]},
        "type": EXPORT,
        "subtype": [ITI_65],
        "action": "C",
        "recorded": when,
        "outcome": _OUTCOME.get(status, "0"),
        "outcomeDesc": description,
        "agent": [{"who": {"identifier": {"system": CLIENT_ID_SYSTEM, "value": KIND}, "display": "le pré-DMP"},
                   "requestor": True},
                  {"who": {"display": "Dossier médical partagé (destinataire MHD)"}, "requestor": False,
                   "network": {"address": endpoint or "non configuré", "type": "5"}}],
        "source": {"observer": {"display": "Relais FHIR server"}},
        "entity": entities,
    }


def record(store: Any, docref: dict, status: str, when: str, reason: str | None, endpoint: str) -> None:
    """Store the AuditEvent of this state (as the server records every AuditEvent: no outbox event of its own)."""
    event = export_event(docref, status, when, reason, endpoint)
    w.write(store, [w.Change(w.CREATE, "AuditEvent", id=event["id"], resource=event)], SERVER, events=False,
            dangling=True)
