"""One complaint from the field -> a Communication about the patient (the text as sent in ``payload.contentString``,
the channel as ``medium``, the author as ``sender`` with their role), or a QuestionnaireResponse when a tablet
sends a standardized questionnaire (each answer an item; the free text, if any, as a ``valueString`` item). Pure.

The author is the Patient, or a RelatedPerson (a caregiver) or PractitionerRole (the others) contained in the
report: they are known by a name and a phone number, not by an identifier another report could find them by.
"""

from __future__ import annotations

from functools import partial

from fhir_server import codes, write

from .. import json_feed, patients
from ..json_feed import Context, checked, find_or_create, instant, sender_system, stable_id
from ..partner import Answer, FeedMapper, Mapped, Problem
from .schema import ROLES, SCHEMA

NAME = "report"
TABLE = "report_messages"
AUTHOR_ROLE_SYSTEM = f"{codes.RELAIS_CODE_SYSTEMS}/report-author-role"
CHANNEL_SYSTEM = f"{codes.RELAIS_CODE_SYSTEMS}/report-channel"
REPORT_KIND_SYSTEM = f"{codes.RELAIS_CODE_SYSTEMS}/report-kind"
COMPLAINT = {"system": REPORT_KIND_SYSTEM, "code": "complaint", "display": "Plainte signalée"}
FREE_TEXT_ITEM = "free-text"  # the linkId of a questionnaire's free text
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
_MODES = {"phone": "PHONE", "sms": "WRITTEN", "email": "EMAILWRIT", "tablet": "ONLINEWRIT", "app": "ONLINEWRIT"}
_CHECKER = json_feed.validator(SCHEMA)


def feed_mapper(context: Context) -> FeedMapper:
    """The feed for one caller (its sender name and registered systems) at one moment."""
    return json_feed.feed_mapper(NAME, TABLE, map_payload, context)


def map_payload(text: str, context: Context) -> Mapped:
    """The changes of ``text``: the Patient if new, and the Communication or QuestionnaireResponse."""
    try:
        doc = json_feed.read(text, _CHECKER)
        patient = patients.match(doc["patient"], patients.Origin(NAME, context.sender, doc["id"]),
                                 context.patient_systems)
        changes, sources = [], []
        if patient.change is not None:
            changes.append(checked(patient.change, "patient"))
            sources.append("patient")
        system = sender_system(context.sender, NAME)
        identifier = {"system": system, "value": doc["id"]}
        if doc.get("questionnaire"):
            resource = _questionnaire_response(doc, patient.reference, identifier)
            where = "answers"
        else:
            resource = _communication(doc, patient.reference, identifier, context)
            where = "text"
        resource["id"] = stable_id(resource["resourceType"], system, doc["id"])
        changes.append(checked(find_or_create(resource, [identifier], where), where))
        sources.append(where)
    except Problem as problem:
        return Mapped(problem=problem)
    return Mapped(changes, sources, written_answer=partial(_answer, report=doc["id"], patient=patient.reference))


def _author(doc: dict, patient: str) -> tuple[dict, list[dict]]:
    """The reference to the author, and the resources it is contained in (none for the patient)."""
    spec = doc["author"]
    role = spec["role"]
    display = {"display": spec["name"]} if spec.get("name") else {}
    if role == "patient":
        return {"reference": patient, **display}, []
    coding = {"system": AUTHOR_ROLE_SYSTEM, "code": role, "display": ROLES[role]}
    telecom = ([{"system": "phone", "value": spec["phone"]}] if spec.get("phone") else []) + (
        [{"system": "email", "value": spec["email"]}] if spec.get("email") else [])
    if role == "caregiver":
        author: dict = {"resourceType": "RelatedPerson", "id": "author", "patient": {"reference": patient},
                        "relationship": [{"coding": [coding], "text": ROLES[role]}]}
        if spec.get("name"):
            author["name"] = [{"text": spec["name"]}]
    else:
        author = {"resourceType": "PractitionerRole", "id": "author", "code": [{"coding": [coding],
                                                                                  "text": ROLES[role]}]}
        if spec.get("name"):
            author["practitioner"] = {"display": spec["name"]}
    if telecom:
        author["telecom"] = telecom
    return {"reference": "#author", **display}, [author]


def _communication(doc: dict, patient: str, identifier: dict, context: Context) -> dict:
    sender, contained = _author(doc, patient)
    channel = doc["channel"]
    resource: dict = {"resourceType": "Communication"}
    if contained:
        resource["contained"] = contained
    resource.update({
        "identifier": [identifier], "status": "completed",
        "category": [{"coding": [COMPLAINT]}],
        "medium": [{"coding": [{"system": CHANNEL_SYSTEM, "code": channel},
                               {"system": PARTICIPATION_MODE, "code": _MODES[channel]}], "text": channel}],
        "subject": {"reference": patient},
        "sent": doc["time"], "received": instant(context.now),
        "sender": sender,
        "payload": [{"contentString": doc["text"]}],
    })
    return resource


def _questionnaire_response(doc: dict, patient: str, identifier: dict) -> dict:
    author, contained = _author(doc, patient)
    items = []
    for answer in doc["answers"]:
        item: dict = {"linkId": answer["question"]}
        if answer.get("text"):
            item["text"] = answer["text"]
        item["answer"] = [_value(answer["answer"])]
        items.append(item)
    if doc.get("text"):
        items.append({"linkId": FREE_TEXT_ITEM, "text": "Texte libre", "answer": [{"valueString": doc["text"]}]})
    resource: dict = {"resourceType": "QuestionnaireResponse"}
    if contained:
        resource["contained"] = contained
    resource.update({"identifier": identifier, "questionnaire": doc["questionnaire"], "status": "completed",
                     "subject": {"reference": patient}, "authored": doc["time"], "author": author,
                     "source": author, "item": items})
    return resource


def _value(answer: object) -> dict:
    if isinstance(answer, bool):
        return {"valueBoolean": answer}
    if isinstance(answer, int):
        return {"valueInteger": answer}
    if isinstance(answer, float):
        return {"valueDecimal": answer}
    return {"valueString": answer}


def _answer(problem: Problem | None, results: list[write.Result], report: str, patient: str) -> Answer:
    if problem is not None:
        return json_feed.problem_answer(patients.named(problem, patient))
    stored = results[-1]
    body = {"id": report, "status": "unchanged" if stored.outcome == "exists" else "created",
            "resource": f"{stored.resource_type}/{stored.id}", "patient": _patient(results, patient)}
    return json_feed.http_answer(200, body, "accepted")


def _patient(results: list[write.Result], patient: str) -> str:
    first = results[0]
    return f"Patient/{first.id}" if first.resource_type == "Patient" and len(results) > 1 else patient
