"""The IHE MHD ITI-65 Provide Document Bundle of a validated pre-DMP, as ANS PDSm 3.1.1 profiles it.

Pure: the local DocumentReference, the document's bytes, the patient and the validating doctor in; a
transaction Bundle out: the SubmissionSet List, the DocumentReference (PDSm comprehensive), the Binary,
and, when the pre-DMP replaces one already in the national record, that one again as ``superseded``.
The subject is the conditional reference ``Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|<INS>``.
"""

from __future__ import annotations

import base64
import copy
import uuid
from dataclasses import dataclass

from fhir_server.codes import IDNPS, INS_NIR, RPPS

from . import codes, narrative
from .drafts import attachment, oid_of


@dataclass(frozen=True)
class Replaced:
    """The pre-DMP this one replaces in the national record: its local DocumentReference, where the recipient
    keeps it (``DocumentReference/<id>``, ``Binary/<id>``), the doctor who validated it."""

    document_reference: dict
    remote_document_reference: str | None
    remote_binary: str | None
    practitioner: dict


def conditional_subject(ins_value: str, system: str = INS_NIR) -> dict:
    return {"reference": f"Patient?identifier={system}|{ins_value}"}


def author(practitioner: dict, local_id: str = "auteur") -> dict:
    """The contained Practitioner (author and authenticator): RPPS, and IDNPS (8 + RPPS) as the DMP reads it."""
    identifiers = []
    for identifier in practitioner.get("identifier") or []:
        if identifier.get("system") in (RPPS, IDNPS) and identifier.get("value"):
            identifiers.append({"system": identifier["system"], "value": identifier["value"]})
    rpps = next((i["value"] for i in identifiers if i["system"] == RPPS), None)
    if rpps and not any(i["system"] == IDNPS for i in identifiers):
        identifiers.append({"system": IDNPS, "value": f"8{rpps}"})
    contained = {"resourceType": "Practitioner", "id": local_id, "identifier": identifiers}
    if practitioner.get("name"):
        contained["name"] = copy.deepcopy(practitioner["name"])
    return contained


CUSTODIAN = {"resourceType": "Organization", "id": "gardien",
             "name": "Relais, plateforme de coordination des soins à distance"}


def document_reference(local: dict, ins: dict, practitioner: dict, binary_url: str, *, status: str = "current",
                       replaces: Replaced | None = None) -> dict:
    """The PDSm comprehensive DocumentReference of a validated pre-DMP (``local`` is ours)."""
    content = local["content"][0]
    entry_uuid = next((i["value"] for i in local.get("identifier") or [] if i.get("system") == codes.URI),
                      f"urn:uuid:{uuid.uuid4()}")
    resource = {
        "resourceType": "DocumentReference",
        "meta": {"profile": [codes.PDSM_DOCUMENT_REFERENCE]},
        "language": codes.LANGUAGE,
        "contained": [author(practitioner), dict(CUSTODIAN)],
        "masterIdentifier": dict(local["masterIdentifier"]),
        "identifier": [{"use": "official", "system": codes.URI, "value": entry_uuid}],
        "status": status,
        "docStatus": "final",
        "type": copy.deepcopy(local["type"]),
        "category": copy.deepcopy(local["category"]),
        "subject": conditional_subject(ins["value"], ins["system"]),
        "date": local["date"],
        "author": [{"reference": "#auteur"}],
        "authenticator": {"reference": "#auteur"},
        "custodian": {"reference": "#gardien"},
        "description": local.get("description", "Pré-DMP"),
        "securityLabel": copy.deepcopy(local["securityLabel"]),
        "content": [{"attachment": {**content["attachment"], "url": binary_url}, "format": content["format"]}],
        "context": copy.deepcopy(local["context"]),
    }
    if replaces is not None:
        target: dict = {"identifier": dict(replaces.document_reference["masterIdentifier"])}
        if replaces.remote_document_reference:
            target["reference"] = replaces.remote_document_reference
        resource["relatesTo"] = [{"code": "replaces", "target": target}]
    return resource


def submission_set(practitioner: dict, ins: dict, source_oid: str, document_url: str, now: str, title: str) -> dict:
    return {
        "resourceType": "List",
        "meta": {"profile": [codes.PDSM_SUBMISSION_SET]},
        "contained": [author(practitioner),
                      {"resourceType": "PractitionerRole", "id": "role-auteur",
                       "practitioner": {"reference": "#auteur"}}],
        "extension": [
            {"url": codes.DESIGNATION_TYPE, "valueCodeableConcept": {"coding": [codes.CONTENT_TYPE_CODE]}},
            {"url": codes.SOURCE_ID, "valueIdentifier": {"system": codes.URI, "value": f"urn:oid:{source_oid}"}},
            {"url": codes.SOURCE_PATIENT_ID, "valueIdentifier": {"system": ins["system"], "value": ins["value"]}},
        ],
        "identifier": [
            {"use": "usual", "system": codes.URI, "value": f"urn:oid:{oid_of(uuid.uuid4())}"},
            {"use": "official", "system": codes.URI, "value": f"urn:uuid:{uuid.uuid4()}"},
        ],
        "status": "current",
        "mode": "working",
        "title": title,
        "code": {"coding": [codes.SUBMISSION_SET_CODE]},
        "subject": conditional_subject(ins["value"], ins["system"]),
        "date": now,
        "source": {"reference": "#role-auteur"},
        "entry": [{"item": {"reference": document_url}}],
    }


def provide_bundle(local: dict, data: bytes, patient: dict, practitioner: dict, source_oid: str, now: str,
                   replaces: Replaced | None = None, replaced_data: bytes | None = None) -> dict:
    """The ITI-65 transaction Bundle sending ``local`` (a validated pre-DMP whose document is ``data``)."""
    ins = narrative.ins(patient)
    if ins is None:
        raise ValueError("the patient has no INS")
    document_url, binary_url, list_url = (f"urn:uuid:{uuid.uuid4()}" for _ in range(3))
    reference = document_reference(local, ins, practitioner, binary_url, replaces=replaces)
    reference["content"][0]["attachment"] = {**attachment(data, "x", local["content"][0]["attachment"]["creation"]),
                                             "url": binary_url}
    title = f"Pré-DMP de {narrative.patient_name(patient)}"
    entries = [
        {"fullUrl": list_url, "resource": submission_set(practitioner, ins, source_oid, document_url, now, title),
         "request": {"method": "POST", "url": "List"}},
        {"fullUrl": document_url, "resource": reference, "request": {"method": "POST", "url": "DocumentReference"}},
        {"fullUrl": binary_url,
         "resource": {"resourceType": "Binary", "contentType": codes.CONTENT_TYPE,
                      "data": base64.b64encode(data).decode()},
         "request": {"method": "POST", "url": "Binary"}},
    ]
    if replaces is not None and replaces.remote_document_reference:
        old_binary = replaces.remote_binary or "Binary"
        old = document_reference(replaces.document_reference, ins, replaces.practitioner, old_binary,
                                 status="superseded")
        if replaced_data is not None:
            old["content"][0]["attachment"] = {
                **attachment(replaced_data, "x", replaces.document_reference["content"][0]["attachment"]["creation"]),
                "url": old_binary}
        remote_id = replaces.remote_document_reference.split("/")[-1]
        old["id"] = remote_id
        entries.append({"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": old,
                        "request": {"method": "PUT", "url": f"DocumentReference/{remote_id}"}})
    return {"resourceType": "Bundle", "meta": {"profile": [codes.PDSM_BUNDLE]}, "type": "transaction",
            "timestamp": now, "entry": entries}
