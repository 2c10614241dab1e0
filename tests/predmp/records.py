"""A patient the platform knows a little of, as the feeds would have written it: the pre-DMP's test data."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fhir_server.codes import (
    CARE_ROLE_SYSTEM,
    CONSENT_KIND_SYSTEM,
    DMP_FEEDING,
    IDENTITY_RELIABILITY,
    IDENTITY_STATUS_SYSTEM,
    INS_NIR,
    RPPS,
    TRIAGE_ALERT,
    TRIAGE_CLASS_SYSTEM,
)

INS = "279035121518989"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}


def patient(pid: str = "p1", status: str = "VALI", ins: str | None = INS) -> dict:
    resource = {
        "resourceType": "Patient", "id": pid,
        "extension": [{"url": IDENTITY_RELIABILITY, "extension": [
            {"url": "identityStatus", "valueCoding": {"system": IDENTITY_STATUS_SYSTEM, "code": status}}]}],
        "name": [{"use": "official", "family": "Martin", "given": ["Jeanne"]}],
        "gender": "female", "birthDate": "1951-03-12",
        "generalPractitioner": [{"reference": "Practitioner/gp1"}],
    }
    if ins:
        resource["identifier"] = [{"use": "official", "system": INS_NIR, "value": ins}]
    return resource


def practitioner(pid: str = "gp1", rpps: str | None = "10003456789", family: str = "Durand") -> dict:
    resource = {"resourceType": "Practitioner", "id": pid,
                "name": [{"family": family, "given": ["Paul"], "prefix": ["Dr"]}],
                "telecom": [{"system": "phone", "value": "+33 1 23 45 67 89"}]}
    if rpps:
        resource["identifier"] = [{"system": RPPS, "value": rpps}]
    return resource


def nurse() -> dict:
    return {"resourceType": "Practitioner", "id": "n1", "identifier": [{"system": RPPS, "value": "10009999999"}],
            "name": [{"family": "Petit", "given": ["Claire"]}],
            "telecom": [{"system": "phone", "value": "06 11 22 33 44"}]}


def care_team(pid: str = "p1") -> dict:
    return {"resourceType": "CareTeam", "id": f"team-{pid}", "status": "active",
            "subject": {"reference": f"Patient/{pid}"},
            "participant": [
                {"role": [{"coding": [{"system": CARE_ROLE_SYSTEM, "code": "nurse"}]}],
                 "member": {"reference": "Practitioner/n1"}},
                {"role": [{"coding": [{"system": CARE_ROLE_SYSTEM, "code": "general-practitioner"}]}],
                 "member": {"reference": "Practitioner/gp1"}}]}


def condition(pid: str = "p1") -> dict:
    return {"resourceType": "Condition", "id": f"c-{pid}",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                           "code": "active"}]},
            "code": {"text": "Insuffisance cardiaque chronique"}, "subject": {"reference": f"Patient/{pid}"},
            "onsetDateTime": "2019-05-01"}


def medication(pid: str = "p1") -> dict:
    return {"resourceType": "MedicationRequest", "id": f"m-{pid}", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Furosémide 40 mg"}, "subject": {"reference": f"Patient/{pid}"},
            "authoredOn": "2026-10-01",
            "dosageInstruction": [{"doseAndRate": [{"doseQuantity": {"value": 1, "unit": "comprimé"}}],
                                   "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                                   "route": {"text": "Orale"}}]}


def allergy(pid: str = "p1") -> dict:
    return {"resourceType": "AllergyIntolerance", "id": f"a-{pid}", "patient": {"reference": f"Patient/{pid}"},
            "code": {"text": "Pénicilline"}, "criticality": "high",
            "reaction": [{"manifestation": [{"text": "Urticaire"}]}]}


def weight(oid: str, value: float, when: str, pid: str = "p1") -> dict:
    return {"resourceType": "Observation", "id": oid, "status": "final", "category": [VITAL],
            "code": {"coding": [{"system": LOINC, "code": "29463-7", "display": "Poids corporel"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "kg", "system": UCUM, "code": "kg"}}


def pressure(oid: str, systolic: int, diastolic: int, when: str, pid: str = "p1") -> dict:
    def part(code: str, display: str, value: int) -> dict:
        return {"code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "valueQuantity": {"value": value, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}
    return {"resourceType": "Observation", "id": oid, "status": "final", "category": [VITAL],
            "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Pression artérielle"}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "component": [part("8480-6", "Systolique", systolic), part("8462-4", "Diastolique", diastolic)]}


def alert(when: str, pid: str = "p1") -> dict:
    return {"resourceType": "Task", "id": f"t-{pid}", "status": "requested", "intent": "order", "priority": "urgent",
            "code": {"coding": [TRIAGE_ALERT]}, "for": {"reference": f"Patient/{pid}"},
            "focus": {"reference": f"Observation/w2-{pid}"}, "authoredOn": when,
            "description": "Prise de poids de 2,4 kg en 3 jours",
            "businessStatus": {"coding": [{"system": TRIAGE_CLASS_SYSTEM, "code": "chronic-unknown"}]}}


def complaint(when: str, pid: str = "p1") -> dict:
    return {"resourceType": "Communication", "id": f"com-{pid}", "status": "completed",
            "subject": {"reference": f"Patient/{pid}"}, "sent": when,
            "payload": [{"contentString": "Je suis essoufflée quand je monte l'escalier"}]}


def consent(kind: str, pid: str = "p1", cid: str = "dmp-consent") -> dict:
    """``deny``: the patient objects to feeding the DMP; ``permit``: they do not."""
    return {"resourceType": "Consent", "id": cid, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": CONSENT_KIND_SYSTEM, "code": DMP_FEEDING}]}],
            "patient": {"reference": f"Patient/{pid}"}, "dateTime": "2026-11-01T10:00:00Z",
            "policyRule": {"text": "Opposition à l'alimentation du DMP (CSP L1111-15)"},
            "provision": {"type": kind}}


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def known_patient(pid: str = "p1", status: str = "VALI") -> list[dict]:
    """Everything the platform knows of the patient ``pid``, in an order a write accepts (targets first)."""
    return [practitioner(), nurse(), patient(pid, status), care_team(pid), condition(pid), medication(pid),
            allergy(pid), weight(f"w1-{pid}", 70.2, days_ago(5), pid), weight(f"w2-{pid}", 72.6, days_ago(2), pid),
            pressure(f"bp1-{pid}", 135, 85, days_ago(2), pid), alert(days_ago(2), pid),
            complaint(days_ago(1), pid)]
