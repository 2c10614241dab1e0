"""The consultation report of ``POST /feeds/teleconsultation``, as served at ``GET /feeds/teleconsultation/schema``."""

from __future__ import annotations

from ..schemas import KEY, PATIENT, TIME, schema

ICD_10 = "http://hl7.org/fhir/sid/icd-10"
CIP13 = "urn:oid:1.2.250.1.213.2.3.1"
UCD = "urn:oid:1.2.250.1.213.2.3.2"
ATC = "http://www.whocc.no/atc"
_TEXT = {"type": "string", "minLength": 1}

SCHEMA = schema(
    "teleconsultation",
    "Relais teleconsultation report",
    "What a remote doctor concluded. In one transaction it becomes an Encounter (class VR) with its participant,"
    " the Conditions (encounter-diagnosis), the MedicationRequests (intent order) and a DocumentReference holding"
    " the report, with the Practitioner found or created by RPPS; all linked to the Encounter.",
    {
        "id": {**KEY, "description": "the consultation's id at the sender: unique per sender"},
        "patient": PATIENT,
        "practitioner": {
            "type": "object",
            "properties": {"rpps": {"type": "string", "pattern": "^[0-9]{11}$", "description": "RPPS, 11 digits"},
                           "family": _TEXT, "given": _TEXT},
            "required": ["rpps"],
            "additionalProperties": False,
        },
        "start": TIME,
        "end": TIME,
        "reason": {**_TEXT, "description": "free text"},
        "diagnoses": {"type": "array", "items": {
            "type": "object",
            "properties": {"system": {"const": ICD_10},
                           "code": {"type": "string", "pattern": r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"},
                           "display": _TEXT},
            "required": ["system", "code"], "additionalProperties": False}},
        "prescriptions": {"type": "array", "items": {
            "type": "object",
            "properties": {"system": {"enum": [CIP13, UCD, ATC]}, "code": _TEXT, "display": _TEXT,
                           "dosage": {**_TEXT, "description": "dosage as text"}},
            "required": ["system", "code", "dosage"], "additionalProperties": False}},
        "follow_up": {**_TEXT, "description": "follow-up instructions"},
        "report": {**_TEXT, "description": "the report text"},
    },
    ["id", "patient", "practitioner", "start", "end", "report"],
)
