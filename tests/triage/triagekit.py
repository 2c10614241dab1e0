"""Resources and look-ups the triage tests share."""

from __future__ import annotations

from kit.outbox import drain

from fhir_server.codes import TRIAGE_ALERT

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def quantity(value: float, unit: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": unit}


def measure(code: str, value: float, unit: str, patient: str = "p1", at: str = "2026-11-20T08:00:00Z") -> dict:
    """An Observation of one LOINC-coded value."""
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": code}]}, "subject": {"reference": f"Patient/{patient}"},
            "effectiveDateTime": at, "valueQuantity": quantity(value, unit)}


def blood_pressure(systolic: float, diastolic: float, patient: str = "p1", at: str = "2026-11-20T08:00:00Z") -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "85354-9"}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": at,
            "component": [{"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
                           "valueQuantity": quantity(systolic, "mm[Hg]")},
                          {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
                           "valueQuantity": quantity(diastolic, "mm[Hg]")}]}


def fall(patient: str = "p1", at: str = "2026-11-20T08:00:00Z") -> dict:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1912002", "display": "Fall"}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": at}


def goal(patient: str, code: str, low: float | None = None, high: float | None = None, unit: str = "%") -> dict:
    """A clinician's target range for one measure: the patient's own thresholds."""
    detail = {}
    if low is not None:
        detail["low"] = quantity(low, unit)
    if high is not None:
        detail["high"] = quantity(high, unit)
    return {"resourceType": "Goal", "lifecycleStatus": "active", "description": {"text": "cible"},
            "subject": {"reference": f"Patient/{patient}"},
            "target": [{"measure": {"coding": [{"system": LOINC, "code": code}]}, "detailRange": detail}]}


def triage_tasks(server, patient: str = "p1") -> list[dict]:
    """The triage Tasks of ``patient``, after the outbox is drained."""
    drain(server.app)
    bundle = server.get(f"Task?patient=Patient/{patient}&code={TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}"
                        "&_count=100").json()
    return [e["resource"] for e in bundle.get("entry", [])]


def flags(server, patient: str = "p1") -> list[dict]:
    bundle = server.get(f"Flag?patient=Patient/{patient}&_count=100").json()
    return [e["resource"] for e in bundle.get("entry", [])]


def inputs(task: dict) -> list[tuple[str, str]]:
    """(type text, value) of each input of a Task."""
    out = []
    for item in task.get("input", []):
        value = item.get("valueString") or (item.get("valueReference") or {}).get("reference")
        out.append((item["type"]["text"], value))
    return out
