"""The teleconsultation mapper (mappers/teleconsultation/), with payloads alone."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime

import pytest

from fhir_server import codes
from mappers import json_feed
from mappers.json_feed import Context
from mappers.teleconsultation import map_payload

from .payloads import TELECONSULTATION

CONTEXT = Context("tlc-service", datetime(2026, 12, 1, 11, tzinfo=UTC))


def changes(doc: dict) -> dict[str, list[dict]]:
    result = map_payload(json.dumps(doc), CONTEXT)
    assert result.problem is None, result.problem and result.problem.text
    found: dict[str, list[dict]] = {}
    for change in result.changes:
        found.setdefault(change.resource_type, []).append(change.resource)
    return found


def test_the_issue_example_is_one_transaction_linked_to_a_virtual_encounter():
    found = changes(TELECONSULTATION)
    assert sorted(found) == ["Condition", "DocumentReference", "Encounter", "MedicationRequest", "Patient",
                             "Practitioner"]
    (doctor,) = found["Practitioner"]
    assert doctor["identifier"][0]["system"] == codes.RPPS and doctor["identifier"][0]["value"] == "10101234567"
    assert doctor["name"] == [{"family": "Durand", "given": ["Claire"]}]
    (visit,) = found["Encounter"]
    assert visit["class"]["code"] == "VR" and visit["status"] == "finished"
    assert visit["period"] == {"start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T10:20:00+01:00"}
    assert visit["participant"][0]["individual"] == {"reference": f"Practitioner/{doctor['id']}"}
    assert visit["reasonCode"] == [{"text": "Essoufflement depuis trois jours"}]
    encounter = {"reference": f"Encounter/{visit['id']}"}
    (condition,) = found["Condition"]
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I50.9",
                                              "display": "Insuffisance cardiaque, sans précision"}
    (order,) = found["MedicationRequest"]
    assert order["intent"] == "order"
    assert order["dosageInstruction"] == [{"text": "1 comprimé le matin pendant 7 jours"}]
    assert order["medicationCodeableConcept"]["coding"][0]["code"] == "C03CA01"
    (document,) = found["DocumentReference"]
    assert document["author"] == [{"reference": f"Practitioner/{doctor['id']}"}]
    report, follow_up = (base64.b64decode(c["attachment"]["data"]).decode() for c in document["content"])
    assert report == TELECONSULTATION["report"] and follow_up == TELECONSULTATION["follow_up"]
    for linked in (condition, order):
        assert linked["encounter"] == encounter
    assert document["context"]["encounter"] == [encounter]
    patient = found["Patient"][0]
    assert all(r["subject"] == {"reference": f"Patient/{patient['id']}"} for r in (visit, condition, order, document))


def test_the_same_report_maps_to_the_same_ids_and_the_practitioner_is_found_by_rpps():
    first, again = changes(TELECONSULTATION), changes(TELECONSULTATION)
    assert {k: [r["id"] for r in v] for k, v in first.items()} == {k: [r["id"] for r in v] for k, v in again.items()}
    result = map_payload(json.dumps(TELECONSULTATION), CONTEXT)
    doctor = next(c for c in result.changes if c.resource_type == "Practitioner")
    assert doctor.action == "create" and doctor.condition is not None  # found by RPPS, else created


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["practitioner"].pop("rpps"), "practitioner.rpps"),
    (lambda d: d["practitioner"].update(rpps="123"), "practitioner.rpps"),
    (lambda d: d["diagnoses"][0].update(system="http://snomed.info/sct"), "diagnoses[0].system"),
    (lambda d: d["prescriptions"][0].update(system="urn:oid:1.2.3"), "prescriptions[0].system"),
    (lambda d: d["prescriptions"][0].pop("dosage"), "prescriptions[0].dosage"),
    (lambda d: d.update(end="2026-12-01T09:00:00+01:00"), "end"),
    (lambda d: d.pop("report"), "report"),
    (lambda d: d.update(start="demain"), "start"),
])
def test_bad_input_is_400_naming_the_field(change, field):
    doc = copy.deepcopy(TELECONSULTATION)
    change(doc)
    result = map_payload(json.dumps(doc), CONTEXT)
    assert result.problem is not None
    answer = json_feed.problem_answer(result.problem)
    assert answer.body["status"] == 400 and answer.body["body"]["issue"][0]["expression"] == [field]


def test_cip13_and_ucd_drug_codes_are_taken():
    doc = copy.deepcopy(TELECONSULTATION)
    doc["prescriptions"] = [{"system": "urn:oid:1.2.250.1.213.2.3.1", "code": "3400930000000", "dosage": "1/j"},
                            {"system": "urn:oid:1.2.250.1.213.2.3.2", "code": "9000000", "dosage": "2/j"}]
    assert len(changes(doc)["MedicationRequest"]) == 2
