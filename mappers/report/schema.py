"""The complaint of ``POST /feeds/report``, as served at ``GET /feeds/report/schema``."""

from __future__ import annotations

from ..schemas import KEY, PATIENT, TIME, schema

ROLES = {
    "patient": "Patient",
    "caregiver": "Aidant",
    "home-aide": "Aide à domicile",
    "nurse": "Infirmier(e)",
    "ambulance": "Ambulancier",
    "home-hospitalisation": "Hospitalisation à domicile",
    "tele-alarm": "Téléassistance",
    "pharmacist": "Pharmacien(ne)",
    "physician": "Médecin",
}
CHANNELS = ("phone", "sms", "email", "tablet", "app")
_ANSWER = {"type": ["string", "number", "boolean"]}

SCHEMA = schema(
    "report",
    "Relais complaint from the field",
    "A free-text complaint by the patient or someone around them, by phone, SMS, mail, tablet or app. It becomes"
    " a Communication about the patient (payload.contentString: the text as sent); a standardized questionnaire"
    " (questionnaire + answers, from a tablet) becomes a QuestionnaireResponse. Either is read by triage.",
    {
        "id": {**KEY, "description": "the report's id at the sender: unique per sender"},
        "patient": PATIENT,
        "author": {
            "type": "object",
            "properties": {"role": {"enum": list(ROLES)}, "name": {"type": "string", "minLength": 1},
                           "phone": {"type": "string", "minLength": 1}, "email": {"type": "string", "minLength": 1}},
            "required": ["role"],
            "additionalProperties": False,
        },
        "channel": {"enum": list(CHANNELS)},
        "time": TIME,
        "text": {"type": "string", "minLength": 1, "description": "the complaint in French, stored as sent"},
        "questionnaire": {"type": "string", "minLength": 1,
                          "description": "the canonical URL of the standardized questionnaire answered"},
        "answers": {"type": "array", "minItems": 1, "items": {
            "type": "object",
            "properties": {"question": {"type": "string", "minLength": 1, "description": "the item's linkId"},
                           "text": {"type": "string"}, "answer": _ANSWER},
            "required": ["question", "answer"], "additionalProperties": False}},
    },
    ["id", "patient", "author", "channel", "time"],
    anyOf=[{"required": ["text"]}, {"required": ["questionnaire", "answers"]}],
    dependentRequired={"questionnaire": ["answers"], "answers": ["questionnaire"]},
)
