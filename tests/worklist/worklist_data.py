"""A small ward for the worklist tests: two patients, their care teams, their triage Tasks (FHIR JSON)."""

from __future__ import annotations

from fhir_server import codes

SNOMED = "http://snomed.info/sct"


def practitioner(pid: str, family: str, phone: str, rpps: str) -> dict:
    return {
        "resourceType": "Practitioner", "id": pid,
        "identifier": [{"system": codes.RPPS, "value": rpps}],
        "name": [{"family": family, "given": ["Marie"], "prefix": ["Dr"]}],
        "telecom": [{"system": "phone", "value": phone, "use": "work"}],
    }  # fmt: skip


def role(code: str) -> list[dict]:
    return [{"coding": [{"system": codes.CARE_ROLE_SYSTEM, "code": code, "display": codes.CARE_ROLES[code]}]}]


def snomed_role(code: str) -> list[dict]:
    return [{"coding": [{"system": SNOMED, "code": code}]}]


def task(tid: str, patient: str, priority: str | None, authored: str, focus: str, *, status: str = "requested",
         owner: str = "Organization/oncall", code: dict | None = None) -> dict:  # fmt: skip
    resource = {
        "resourceType": "Task", "id": tid, "status": status, "intent": "order",
        "code": {"coding": [code or codes.TRIAGE_ALERT]},
        "for": {"reference": f"Patient/{patient}"},
        "focus": {"reference": focus},
        "owner": {"reference": owner},
        "authoredOn": authored,
        "description": "Aide à la décision, pas un diagnostic",
    }  # fmt: skip
    if priority:
        resource["priority"] = priority
    return resource


def observation(oid: str, patient: str, value: float) -> dict:
    return {
        "resourceType": "Observation", "id": oid, "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "valueQuantity": {"value": value, "unit": "mm[Hg]", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
    }  # fmt: skip


def ward() -> list[dict]:
    """Everything, in an order a PUT of each one after the other accepts (references resolve)."""
    people = [
        practitioner("gp1", "Durand", "+33 1 00 00 00 01", "10000000001"),
        practitioner("ipa1", "Martin", "+33 1 00 00 00 02", "10000000002"),
        practitioner("nurse1", "Bernard", "+33 1 00 00 00 03", "10000000003"),
        practitioner("pharma1", "Petit", "+33 1 00 00 00 04", "10000000004"),
        practitioner("kine1", "Robert", "+33 1 00 00 00 05", "10000000005"),
        practitioner("psy1", "Richard", "+33 1 00 00 00 06", "10000000006"),
        practitioner("gone1", "Dubois", "+33 1 00 00 00 07", "10000000007"),
        practitioner("gp2", "Moreau", "+33 1 00 00 00 08", "10000000008"),
        {"resourceType": "Organization", "id": "oncall", "name": "Plateforme de coordination, astreinte"},
        {"resourceType": "Organization", "id": "dayteam", "name": "Plateforme de coordination, jour"},
    ]
    patients = [
        {"resourceType": "Patient", "id": "p1", "name": [{"family": "Lefebvre", "given": ["Jeanne"]}],
         "generalPractitioner": [{"reference": "Practitioner/gp1"}]},
        {"resourceType": "Patient", "id": "p2", "name": [{"family": "Garcia", "given": ["Paul"]}],
         "generalPractitioner": [{"reference": "Practitioner/gp2"}]},
    ]  # fmt: skip
    teams = [
        # Listed out of call order on purpose, roles in our system and in SNOMED CT.
        {"resourceType": "CareTeam", "id": "team1", "status": "active", "subject": {"reference": "Patient/p1"},
         "participant": [
             {"member": {"reference": "Practitioner/psy1"}},
             {"member": {"reference": "Practitioner/kine1"}, "role": role("physiotherapist")},
             {"member": {"reference": "Practitioner/pharma1"}, "role": snomed_role("46255001")},
             {"member": {"reference": "Practitioner/nurse1"}, "role": snomed_role("224535009")},
             {"member": {"reference": "Practitioner/gone1"}, "role": role("nurse"),
              "period": {"end": "2020-01-01"}},
             {"member": {"reference": "Practitioner/ipa1"}, "role": role("advanced-practice-nurse")},
             {"member": {"reference": "Practitioner/gp1"}, "role": role("general-practitioner")},
             {"member": {"reference": "Patient/p1"}},
         ]},
        {"resourceType": "CareTeam", "id": "oldteam1", "status": "inactive", "subject": {"reference": "Patient/p1"},
         "participant": [{"member": {"reference": "Practitioner/gone1"}, "role": role("nurse")}]},
        {"resourceType": "CareTeam", "id": "team2", "status": "active", "subject": {"reference": "Patient/p2"},
         "participant": [{"member": {"reference": "Practitioner/nurse1"}, "role": role("nurse")}]},
    ]  # fmt: skip
    measures = [observation(f"bp{i}", "p1" if i < 5 else "p2", 180 + i) for i in range(8)]
    tasks = [
        task("t-routine-old", "p1", "routine", "2026-01-01T08:00:00Z", "Observation/bp0"),
        task("t-nopriority", "p1", None, "2026-01-02T08:00:00Z", "Observation/bp1"),
        task("t-urgent", "p1", "urgent", "2026-01-03T08:00:00Z", "Observation/bp2"),
        task("t-stat-new", "p2", "stat", "2026-01-05T08:00:00Z", "Observation/bp5"),
        task("t-stat-old", "p1", "stat", "2026-01-04T08:00:00Z", "Observation/bp3"),
        task("t-asap", "p2", "asap", "2026-01-01T09:00:00Z", "Observation/bp6", status="in-progress",
             owner="Organization/dayteam"),
        task("t-done", "p1", "stat", "2026-01-01T07:00:00Z", "Observation/bp4", status="completed"),
        task("t-other", "p2", "stat", "2026-01-01T07:00:00Z", "Observation/bp7",
             code={"system": "http://hl7.org/fhir/CodeSystem/task-code", "code": "fulfill"}),
    ]  # fmt: skip
    return [*people, *patients, *teams, *measures, *tasks]


# The open triage Tasks, in the order the worklist gives them.
ORDER = ["t-stat-old", "t-stat-new", "t-asap", "t-urgent", "t-routine-old", "t-nopriority"]
# Whom to call about Patient/p1.
P1_CALLS = [("gp1", "general-practitioner"), ("ipa1", "advanced-practice-nurse"), ("nurse1", "nurse"),
            ("pharma1", "pharmacist"), ("kine1", "physiotherapist"), ("psy1", "other")]
