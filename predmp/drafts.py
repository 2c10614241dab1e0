"""Store a pre-DMP draft: the document in a Binary, its DocumentReference ``preliminary``, the previous draft
superseded. Written through the write path as ``relais-predmp``; one current draft per patient, checked
inside the write's transaction."""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import auth
from fhir_server import write as w
from fhir_server.actor import Actor
from fhir_server.errors import FHIRError
from fhir_server.fhirjson import dumps
from fhir_server.ids import new_id
from fhir_server.locking import LOCK_TAG
from fhir_server.search.parser import parse
from fhir_server.store.base import Store, Transaction

from . import codes, messages
from .actor import decide
from .document import build
from .gather import effective, gather

_ATTEMPTS = 20
# One build at a time per patient in this process: concurrent builds would gather, build and lose the race
# inside the write's transaction in turn. Across processes the transaction's guard alone decides.
_BUILDING: dict[str, threading.Lock] = {}
_BUILDING_GUARD = threading.Lock()


@dataclass
class Draft:
    document_reference: dict
    binary: dict
    document: dict
    replaced: list[str]  # ids of the drafts it superseded


def is_predmp(resource: dict | None) -> bool:
    tags = ((resource or {}).get("meta") or {}).get("tag") or ()
    return any(t.get("system") == codes.PREDMP_TAG["system"] and t.get("code") == codes.PREDMP_TAG["code"]
               for t in tags if isinstance(t, dict))


def current_query(patient_id: str):
    """The DocumentReferences of a patient's pre-DMPs still ``current`` (drafts and validated ones)."""
    tag = f"{codes.PREDMP_TAG['system']}|{codes.PREDMP_TAG['code']}"
    return parse("DocumentReference", [("subject", f"Patient/{patient_id}"), ("_tag", tag), ("status", "current"),
                                       ("_count", "100")])


def current_drafts(searcher: Store | Transaction, patient_id: str, in_transaction: bool = False) -> list[str]:
    """Ids of the patient's current drafts (docStatus preliminary): one, or none, when all is well."""
    found = searcher.search(current_query(patient_id)).ids
    # inside a write's transaction, read what it sees; otherwise the store's current version
    read = searcher.current if in_transaction else searcher.read  # type: ignore[union-attr]
    drafts = []
    for rid in found:
        stored = read("DocumentReference", rid)
        if stored is not None and stored.resource and stored.resource.get("docStatus") == "preliminary":
            drafts.append(rid)
    return sorted(drafts)


def oid_of(value: uuid.UUID) -> str:
    """A UUID as an OID under 2.25 (ITU-T X.667): the urn:oid masterIdentifier XDS wants, without an OID root."""
    return f"2.25.{value.int}"


def content_bytes(document: dict) -> bytes:
    return dumps(document)


def attachment(data: bytes, binary_id: str, created: str) -> dict:
    """The attachment PDSm wants: size, SHA-1 hash (base64), title, language fr-FR, url to the Binary."""
    return {
        "contentType": codes.CONTENT_TYPE,
        "language": codes.LANGUAGE,
        "url": f"Binary/{binary_id}",
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode(),
        "title": codes.DOCUMENT_TITLE,
        "creation": created,
    }


def binary(binary_id: str, docref_id: str, data: bytes, locked: bool = False) -> dict:
    meta_tags = [dict(codes.PREDMP_TAG)]
    if locked:
        meta_tags.append(dict(LOCK_TAG))
    return {"resourceType": "Binary", "id": binary_id, "meta": {"tag": meta_tags}, "contentType": codes.CONTENT_TYPE,
            "securityContext": {"reference": f"DocumentReference/{docref_id}"},
            "data": base64.b64encode(data).decode()}


def _period(document: dict, now: str) -> dict:
    """From the oldest dated fact the document holds to now (XDS serviceStartTime / serviceStopTime)."""
    dates = []
    for entry in document["entry"][1:]:
        resource = entry["resource"]
        when = effective(resource) or resource.get("recordedDate") or resource.get("authoredOn") \
            or resource.get("sent") or resource.get("authored")
        if isinstance(when, str) and len(when) >= 10:
            dates.append(when)
    start = min(dates) if dates else now
    return {"start": start if start <= now else now, "end": now}


def document_reference(docref_id: str, patient_id: str, document: dict, data: bytes, binary_id: str, now: str,
                       replaces: list[str]) -> dict:
    master = uuid.uuid4()
    resource = {
        "resourceType": "DocumentReference",
        "id": docref_id,
        "meta": {"tag": [dict(codes.PREDMP_TAG)]},
        "language": codes.LANGUAGE,
        "masterIdentifier": {"system": codes.URI, "value": f"urn:oid:{oid_of(master)}"},
        "identifier": [{"use": "official", "system": codes.URI, "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [codes.DOCUMENT_TYPE], "text": "Synthèse patient (pré-DMP)"},
        "category": [{"coding": [codes.DOCUMENT_CLASS]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": now,
        "description": "Pré-DMP : brouillon à valider par un médecin",
        "securityLabel": [{"coding": [codes.CONFIDENTIALITY_NORMAL]}],
        "content": [{"attachment": attachment(data, binary_id, now), "format": codes.DOCUMENT_FORMAT}],
        "context": {"period": _period(document, now), "facilityType": {"coding": [codes.FACILITY_TYPE]},
                    "practiceSetting": {"coding": [codes.PRACTICE_SETTING]}},
    }
    if replaces:
        resource["relatesTo"] = [{"code": "replaces", "target": {"reference": f"DocumentReference/{rid}"}}
                                 for rid in replaces]
    return resource


def build_draft(store: Store, patient_id: str, base: str, actor: Actor) -> Draft:
    """Gather, build and store a new draft for ``patient_id``; the previous current draft is superseded.

    Raises FHIRError (404 when the patient is not known) or AccessDenied when the actor may not write.
    """
    stored = store.read("Patient", patient_id)
    if stored is None or stored.deleted or stored.resource is None:
        raise messages.refusal(404, "not-found", messages.NO_PATIENT, id=patient_id)
    with _BUILDING_GUARD:
        lock = _BUILDING.setdefault(patient_id, threading.Lock())
    with lock:
        return _build(store, stored.resource, patient_id, base, actor)


def _build(store: Store, patient: dict, patient_id: str, base: str, actor: Actor) -> Draft:
    for _ in range(_ATTEMPTS):
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        previous = current_drafts(store, patient_id)
        document = build(gather(store, patient), base)
        docref_id, binary_id = new_id(), new_id()
        data = content_bytes(document)
        reference = document_reference(docref_id, patient_id, document, data, binary_id, now, previous)
        content = binary(binary_id, docref_id, data)
        changes = [w.Change(w.CREATE, "Binary", id=binary_id, resource=content),
                   w.Change(w.CREATE, "DocumentReference", id=docref_id, resource=reference)]
        for rid in previous:
            old = store.read("DocumentReference", rid)
            if old is None or old.resource is None:
                continue
            changes.append(w.Change(w.UPDATE, "DocumentReference", id=rid, if_match=old.version,
                                    resource={**old.resource, "status": "superseded"}))
        for change in changes:
            decide(actor, change.action, change.resource_type, change.resource)

        def unchanged(txn: Transaction, expected: list[str] = previous) -> None:
            if current_drafts(txn, patient_id, in_transaction=True) != expected:
                raise w.Stale()  # another build committed first: build again on what it left

        try:
            results = w.write(store, changes, actor, guard=unchanged)
        except w.Stale:
            continue
        except FHIRError as exc:
            if exc.status == 412:  # the previous draft changed between our read and the write: again
                continue
            raise
        auth.audit_write(store, actor, results, base)
        return Draft(reference, content, document, previous)
    raise messages.refusal(409, "conflict", ("Trop de constructions simultanées du pré-DMP : réessayez.",
                                             "Too many concurrent builds of the pre-DMP: try again."))
