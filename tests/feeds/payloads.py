"""The issue's example payloads (issue 16), as the tests send them."""

from __future__ import annotations

import copy

INS = "248017512345612"

TELEMONITORING = {
    "patient": {"ins": INS},
    "device": {"id": "SN-88-1123", "manufacturer": "Acme", "model": "BP-3", "type": "blood-pressure-monitor"},
    "measures": [
        {"id": "m1", "type": "blood-pressure", "systolic": 152, "diastolic": 94, "pulse": 71, "unit": "mmHg",
         "time": "2026-12-01T07:42:00+01:00"},
        {"id": "m2", "type": "weight", "value": 160.4, "unit": "lb", "time": "2026-12-01T07:45:00+01:00"},
        {"id": "m3", "type": "glucose", "value": 3.4, "unit": "mmol/L", "time": "2026-12-01T07:50:00+01:00"},
        {"id": "m4", "type": "fall", "time": "2026-12-01T03:12:00+01:00"},
    ],
}

TELECONSULTATION = {
    "id": "tc-2026-0042",
    "patient": {"ins": INS},
    "practitioner": {"rpps": "10101234567", "family": "Durand", "given": "Claire"},
    "start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T10:20:00+01:00",
    "reason": "Essoufflement depuis trois jours",
    "diagnoses": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I50.9",
                   "display": "Insuffisance cardiaque, sans précision"}],
    "prescriptions": [{"system": "http://www.whocc.no/atc", "code": "C03CA01", "display": "Furosémide 40 mg",
                       "dosage": "1 comprimé le matin pendant 7 jours"}],
    "follow_up": "Pesée quotidienne, rappel à J+3",
    "report": "Patiente de 78 ans, dyspnée d'effort...",
}

REPORT = {
    "id": "sms-8812", "patient": {"ins": INS},
    "author": {"role": "home-aide", "name": "Sylvie Martin", "phone": "+33600000000"},
    "channel": "sms", "time": "2026-12-01T18:05:00+01:00",
    "text": "Mme Lefèvre se plaint d'une douleur dans la poitrine depuis ce midi, elle est très essoufflée",
}


def telemonitoring(*measures: dict, **fields) -> dict:
    doc = copy.deepcopy(TELEMONITORING)
    if measures:
        doc["measures"] = list(measures)
    doc.update(fields)
    return doc


def measure(type_: str, id_: str = "x1", time: str = "2026-12-01T07:42:00+01:00", **values) -> dict:
    return {"id": id_, "type": type_, "time": time, **values}
