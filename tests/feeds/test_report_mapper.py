"""The complaints mapper (mappers/report/), with payloads alone: a Communication triage reads, or a
QuestionnaireResponse for a tablet questionnaire; the text kept exactly as sent."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from fhir_server.resources import validate
from mappers.json_feed import Context
from mappers.report import map_payload
from mappers.report.mapper import AUTHOR_ROLE_SYSTEM

from .payloads import REPORT

CONTEXT = Context("sms-gateway", datetime(2026, 12, 1, 18, 6, tzinfo=UTC))


def report(doc: dict) -> dict:
    result = map_payload(json.dumps(doc, ensure_ascii=False), CONTEXT)
    assert result.problem is None, result.problem and result.problem.text
    resource = result.changes[-1].resource
    validate(resource, resource["resourceType"])
    return resource


def test_the_issue_example_is_a_communication_from_a_home_aide_by_sms():
    communication = report(REPORT)
    assert communication["resourceType"] == "Communication" and communication["status"] == "completed"
    assert communication["payload"] == [{"contentString": REPORT["text"]}]
    assert communication["sent"] == REPORT["time"]
    assert communication["medium"][0]["coding"][0]["code"] == "sms"
    assert communication["sender"] == {"reference": "#author", "display": "Sylvie Martin"}
    (author,) = communication["contained"]
    assert author["resourceType"] == "PractitionerRole"
    assert author["code"][0]["coding"][0] == {"system": AUTHOR_ROLE_SYSTEM, "code": "home-aide",
                                              "display": "Aide à domicile"}
    assert author["telecom"] == [{"system": "phone", "value": "+33600000000"}]


def test_a_caregiver_is_a_related_person_and_the_patient_is_the_patient():
    caregiver = report({**REPORT, "author": {"role": "caregiver", "name": "Paul Lefèvre"}})
    assert caregiver["contained"][0]["resourceType"] == "RelatedPerson"
    assert caregiver["contained"][0]["patient"] == caregiver["subject"]
    itself = report({**REPORT, "author": {"role": "patient"}, "channel": "phone"})
    assert itself["sender"] == itself["subject"] and "contained" not in itself
    assert itself["medium"][0]["coding"][1]["code"] == "PHONE"


@pytest.mark.parametrize("text", [
    "Douleur thoracique 😟💔, très essoufflée… « ça serre »",
    "Il a chuté ce matin. " * 500,  # 10 kB
    "line one\nline two\ttab  two spaces ",
])
def test_text_is_stored_exactly_as_sent(text):
    assert len(text.encode()) < 20_000
    assert report({**REPORT, "text": text})["payload"][0]["contentString"] == text


def test_a_tablet_questionnaire_is_a_questionnaire_response_with_value_strings():
    doc = {**REPORT, "channel": "tablet", "author": {"role": "patient"},
           "questionnaire": "https://relais.example/fhir/Questionnaire/suivi-insuffisance-cardiaque",
           "answers": [{"question": "essoufflement", "text": "Êtes-vous essoufflé(e) ?", "answer": "oui, au repos"},
                       {"question": "oedemes", "answer": True}, {"question": "poids", "answer": 81.5},
                       {"question": "oreillers", "answer": 3}]}
    response = report(doc)
    assert response["resourceType"] == "QuestionnaireResponse" and response["status"] == "completed"
    answers = {i["linkId"]: i["answer"][0] for i in response["item"]}
    assert answers["essoufflement"] == {"valueString": "oui, au repos"}
    assert answers["oedemes"] == {"valueBoolean": True} and answers["poids"] == {"valueDecimal": 81.5}
    assert answers["oreillers"] == {"valueInteger": 3}
    assert answers["free-text"] == {"valueString": REPORT["text"]}


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d["author"].update(role="neighbour"), "author.role"),
    (lambda d: d.update(channel="pigeon"), "channel"),
    (lambda d: d.pop("text"), "text"),
    (lambda d: d.pop("time"), "time"),
    (lambda d: d.update(text="\ud83d alone"), "text"),
])
def test_bad_input_names_the_field(change, field):
    doc = copy.deepcopy(REPORT)
    change(doc)
    result = map_payload(json.dumps(doc), CONTEXT)
    assert result.problem is not None and result.problem.status == 400
    assert result.problem.location == field
