"""One telemonitoring payload (vendor JSON) -> the Patient it is about (found, or provisional), its Device and one
Observation per measure (two for a blood pressure with its pulse); answered per measure. Pure.

A measure is identified by its sender, device and id: sent again, it is found and answered ``unchanged``. An
implausible measure is rejected alone; the others are stored.
"""

from __future__ import annotations

from functools import partial

from fhir_server import write

from .. import json_feed, partner, patients
from ..json_feed import Context, checked, find_or_create, reference, sender_system, stable_id
from ..partner import Answer, FeedMapper, Mapped, Problem
from .measures import Implausible, observations
from .schema import SCHEMA

NAME = "telemonitoring"
TABLE = "telemonitoring_messages"
IMPLAUSIBLE = "implausible"  # every measure of the payload was rejected: nothing stored
_CHECKER = json_feed.validator(SCHEMA)


def feed_mapper(context: Context) -> FeedMapper:
    """The feed for one caller (its sender name and registered systems) at one moment."""
    return json_feed.feed_mapper(NAME, TABLE, map_payload, context)


def map_payload(text: str, context: Context) -> Mapped:
    """The changes of ``text``; a payload-wide problem (schema, patient) stops it, a measure's problem only it."""
    try:
        doc = json_feed.read(text, _CHECKER)
        origin = patients.Origin(NAME, context.sender, doc.get("id"))
        patient = patients.match(doc["patient"], origin, context.patient_systems)
    except Problem as problem:
        return Mapped(problem=problem)
    changes: list[write.Change] = []
    sources: list[str] = []
    if patient.change is not None:
        changes.append(checked(patient.change, "patient"))
        sources.append("patient")
    device_spec = doc["device"]
    device = _device(device_spec, patient.reference, context.sender)
    changes.append(checked(device, "device"))
    sources.append("device")
    items: list[dict] = []  # per measure: its answer so far, and the indexes of its changes
    seen: set[str] = set()
    measure_system = sender_system(context.sender, "device", device_spec["id"], "measure")
    for index, measure in enumerate(doc["measures"]):
        where = f"measures[{index}]"
        item: dict = {"id": measure["id"], "changes": []}
        items.append(item)
        if measure["id"] in seen:
            item["reason"] = f"{where}.id: measure {measure['id']!r} is given twice in this payload"
            continue
        seen.add(measure["id"])
        try:
            found = observations(measure, context.now)
        except Implausible as exc:
            item["reason"] = str(exc)
            continue
        try:
            for suffix, resource in found:
                value = f"{measure['id']}/{suffix}" if suffix else measure["id"]
                identifier = {"system": measure_system, "value": value}
                resource = {"resourceType": "Observation", "id": stable_id("Observation", measure_system, value),
                            **{k: v for k, v in resource.items() if k != "resourceType"},
                            "identifier": [identifier], "subject": {"reference": patient.reference},
                            "device": {"reference": reference(device.resource)}}
                item["changes"].append(len(changes))
                changes.append(checked(find_or_create(resource, [identifier], where), where))
                sources.append(where)
        except Problem as problem:  # a resource the profiles refuse: this measure only
            del changes[len(changes) - len(item["changes"]):]
            del sources[len(sources) - len(item["changes"]):]
            item["changes"] = []
            item["reason"] = problem.text
    answer = partial(_answer, items=items, patient=patient.reference, found=patient.change is not None)
    if not any(item["changes"] for item in items):
        problem = Problem(IMPLAUSIBLE, "no measure of the payload was stored: see each measure's reason", "measures")
        return Mapped(problem=problem, answer=partial(answer, results=[]))
    return Mapped(changes, sources, written_answer=answer)


def _device(spec: dict, subject: str, sender: str) -> write.Change:
    system = sender_system(sender, "device")
    identifier = {"system": system, "value": spec["id"]}
    device: dict = {"resourceType": "Device", "id": stable_id("Device", system, spec["id"]),
                    "identifier": [identifier], "status": "active", "serialNumber": spec["id"]}
    if spec.get("manufacturer"):
        device["manufacturer"] = spec["manufacturer"]
    if spec.get("model"):
        device["modelNumber"] = spec["model"]
    if spec.get("type"):
        device["type"] = {"text": spec["type"]}
    device["patient"] = {"reference": subject}
    return find_or_create(device, [identifier], "device")


def _answer(problem: Problem | None, results: list[write.Result], items: list[dict], patient: str,
            found: bool) -> Answer:
    """Per measure: created, unchanged (found: sent before) or rejected with its reason."""
    if problem is not None and problem.reason != IMPLAUSIBLE:
        return json_feed.problem_answer(patients.named(problem, patient))
    if found and results:  # the Patient found by INS or identifier, or created: its id as resolved
        patient = f"Patient/{results[0].id}"
    answers = []
    for item in items:
        if "reason" in item:
            answers.append({"id": item["id"], "status": "rejected", "reason": item["reason"]})
            continue
        written = [results[i] for i in item["changes"] if i < len(results)]
        status = "unchanged" if all(r.outcome == "exists" for r in written) else "created"
        entry = {"id": item["id"], "status": status, "resource": f"{written[0].resource_type}/{written[0].id}"}
        if len(written) > 1:
            entry["resources"] = [f"{r.resource_type}/{r.id}" for r in written]
        answers.append(entry)
    body = {"patient": patient, "results": answers} if problem is None else {"results": answers}
    if problem is not None:
        return json_feed.http_answer(422, body, partner.verdict(problem), problem)
    rejected = any(a["status"] == "rejected" for a in answers)
    return json_feed.http_answer(200, body, "partial" if rejected else "accepted")
