"""One teleconsultation report -> in one transaction: the Patient (found, or provisional), the Practitioner found or
created by RPPS, an Encounter (class VR) with its participant, the Conditions (encounter-diagnosis), the
MedicationRequests (intent order) and a DocumentReference holding the report, all linked to the Encounter. Pure.

Every resource is identified by the sender, the consultation's id and its place in it, so a report stored once is
found again rather than duplicated, whatever way it comes back.
"""

from __future__ import annotations

import base64
from datetime import datetime
from functools import partial

from fhir_server import codes, write

from .. import json_feed, patients
from ..json_feed import INVALID, Context, checked, find_or_create, sender_system, stable_id
from ..partner import Answer, FeedMapper, Mapped, Problem
from .schema import SCHEMA

NAME = "teleconsultation"
TABLE = "teleconsultation_messages"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V3_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
LOINC = "http://loinc.org"
CONSULT_NOTE = {"system": LOINC, "code": "11488-4", "display": "Consult note"}
_CHECKER = json_feed.validator(SCHEMA)


def feed_mapper(context: Context) -> FeedMapper:
    """The feed for one caller (its sender name and registered systems) at one moment."""
    return json_feed.feed_mapper(NAME, TABLE, map_payload, context)


def map_payload(text: str, context: Context) -> Mapped:
    """The changes of ``text``, all written or none; a problem names the field at fault."""
    try:
        doc = json_feed.read(text, _CHECKER)
        return _mapped(doc, context)
    except Problem as problem:
        return Mapped(problem=problem)


def _mapped(doc: dict, context: Context) -> Mapped:
    start, end = _moment(doc["start"], "start"), _moment(doc["end"], "end")
    if end < start:
        raise Problem(INVALID, f"end: {doc['end']} is before start {doc['start']}", "end", status=400)
    consult = doc["id"]
    patient = patients.match(doc["patient"], patients.Origin(NAME, context.sender, consult),
                             context.patient_systems)
    system = sender_system(context.sender, NAME)
    changes: list[write.Change] = []
    sources: list[str] = []

    def add(resource: dict, identifiers: list[dict], where: str) -> str:
        changes.append(checked(find_or_create(resource, identifiers, where), where))
        sources.append(where)
        return f"{resource['resourceType']}/{resource['id']}"

    def own(rtype: str, part: str) -> tuple[dict, str]:
        identifier = {"system": system, "value": f"{consult}/{part}" if part else consult}
        return identifier, stable_id(rtype, system, identifier["value"])

    if patient.change is not None:
        changes.append(checked(patient.change, "patient"))
        sources.append("patient")
    subject = {"reference": patient.reference}
    doctor = _practitioner(doc["practitioner"])
    author = {"reference": add(doctor, [doctor["identifier"][0]], "practitioner")}
    period = {"start": doc["start"], "end": doc["end"]}
    identifier, eid = own("Encounter", "")
    encounter = {"resourceType": "Encounter", "id": eid, "identifier": [identifier], "status": "finished",
                 "class": {"system": V3_ACT_CODE, "code": "VR", "display": "virtual"},
                 "subject": subject, "period": period,
                 "participant": [{"type": [{"coding": [{"system": V3_PARTICIPATION, "code": "PPRF",
                                                        "display": "primary performer"}]}],
                                  "period": period, "individual": author}]}
    if doc.get("reason"):
        encounter["reasonCode"] = [{"text": doc["reason"]}]
    visit = {"reference": add(encounter, [identifier], "id")}
    for index, diagnosis in enumerate(doc.get("diagnoses") or []):
        identifier, cid = own("Condition", f"diagnosis/{index}")
        coding = {k: diagnosis[k] for k in ("system", "code", "display") if k in diagnosis}
        add({"resourceType": "Condition", "id": cid, "identifier": [identifier],
             "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
             "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
             "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": "encounter-diagnosis",
                                       "display": "Encounter Diagnosis"}]}],
             "code": {"coding": [coding], **({"text": coding["display"]} if "display" in coding else {})},
             "subject": subject, "encounter": visit, "recordedDate": doc["end"], "recorder": author},
            [identifier], f"diagnoses[{index}]")
    for index, prescription in enumerate(doc.get("prescriptions") or []):
        identifier, mid = own("MedicationRequest", f"prescription/{index}")
        coding = {k: prescription[k] for k in ("system", "code", "display") if k in prescription}
        add({"resourceType": "MedicationRequest", "id": mid, "identifier": [identifier], "status": "active",
             "intent": "order",
             "medicationCodeableConcept": {"coding": [coding],
                                           **({"text": coding["display"]} if "display" in coding else {})},
             "subject": subject, "encounter": visit, "authoredOn": doc["end"], "requester": author,
             "dosageInstruction": [{"text": prescription["dosage"]}]},
            [identifier], f"prescriptions[{index}]")
    identifier, did = own("DocumentReference", "report")
    content = [_attachment(doc["report"], "Compte rendu de téléconsultation")]
    if doc.get("follow_up"):
        content.append(_attachment(doc["follow_up"], "Consignes de suivi"))
    add({"resourceType": "DocumentReference", "id": did, "masterIdentifier": identifier,
         "identifier": [identifier], "status": "current", "docStatus": "final",
         "type": {"coding": [CONSULT_NOTE], "text": "Compte rendu de téléconsultation"},
         "subject": subject, "date": end.isoformat(), "author": [author],
         "description": doc.get("reason") or "Téléconsultation",
         "content": [{"attachment": a} for a in content],
         "context": {"encounter": [visit], "period": period}},
        [identifier], "report")
    return Mapped(changes, sources, written_answer=partial(_answer, consult=consult, patient=patient.reference))


def _moment(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(INVALID, f"{where}: {text!r} is not an ISO 8601 date-time", where, status=400) from None
    if moment.tzinfo is None:
        raise Problem(INVALID, f"{where}: {text!r} has no time zone offset", where, status=400)
    return moment


def _practitioner(spec: dict) -> dict:
    identifier = {"type": {"coding": [{"system": codes.FR_CORE_IDENTIFIER_TYPES, "code": "RPPS"}]},
                  "system": codes.RPPS, "value": spec["rpps"]}
    doctor: dict = {"resourceType": "Practitioner", "id": stable_id("Practitioner", codes.RPPS, spec["rpps"]),
                    "identifier": [identifier]}
    name = {k: v for k, v in (("family", spec.get("family")), ("given", [spec["given"]] if spec.get("given")
                                                                else None)) if v}
    if name:
        doctor["name"] = [name]
    return doctor


def _attachment(text: str, title: str) -> dict:
    return {"contentType": "text/plain; charset=utf-8", "language": "fr", "title": title,
            "data": base64.b64encode(text.encode()).decode()}


def _answer(problem: Problem | None, results: list[write.Result], consult: str, patient: str) -> Answer:
    if problem is not None:
        return json_feed.problem_answer(patients.named(problem, patient))
    resources = [{"resource": f"{r.resource_type}/{r.id}", "status": "unchanged" if r.outcome == "exists"
                  else "created"} for r in results]
    status = "unchanged" if all(r["status"] == "unchanged" for r in resources) else "created"
    return json_feed.http_answer(200, {"id": consult, "status": status, "resources": resources}, "accepted")
