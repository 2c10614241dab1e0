"""PD1-4 and ROL -> the patient's CareTeam (contract in fhir_server/codes.py). Pure.

One CareTeam a patient, status active, subject the Patient; each participant's role is coded in
CARE_ROLE_SYSTEM (and SNOMED CT where known), its member a Practitioner carrying RPPS or IDNPS and
the phone the message gives. Participants are kept in CALL_ORDER, so the first is whom the
coordinator calls first. A message updates the team: its members added or replaced, ROL-2 DE
removes one, a new médecin traitant replaces the former one; members it does not name stay.
"""

from __future__ import annotations

from fhir_server.codes import CALL_ORDER, CARE_ROLE_SYSTEM, CARE_ROLES

from .changes import Carry, made_up

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
_SNOMED_OF = {
    "general-practitioner": ("62247001", "General practitioner"),
    "advanced-practice-nurse": ("224571005", "Nurse practitioner"),
    "nurse": ("106292003", "Professional nurse"),
    "pharmacist": ("46255001", "Pharmacist"),
    "physiotherapist": ("36682004", "Physiotherapist"),
}


def participant(role: str, member: dict) -> dict:
    """A CareTeam participant: ``role`` (a CARE_ROLES code) and ``member`` (a Reference with identifier)."""
    codings = [{"system": CARE_ROLE_SYSTEM, "code": role, "display": CARE_ROLES[role]}]
    if role in _SNOMED_OF:
        codings.append({"system": SNOMED, "code": _SNOMED_OF[role][0], "display": _SNOMED_OF[role][1]})
    return {"role": [{"coding": codings}], "member": member}


def role_of(item: dict) -> str:
    for concept in item.get("role") or []:
        for coding in concept.get("coding") or []:
            if coding.get("system") == CARE_ROLE_SYSTEM:
                return coding.get("code", "other")
    return "other"


def _who(item: dict) -> str:
    member = item.get("member") or {}
    ident = member.get("identifier") or {}
    return f"{ident.get('system')}|{ident.get('value')}" if ident.get("value") else member.get("reference", "")


def ordered(items: list[dict]) -> list[dict]:
    """``items`` in CALL_ORDER (stable within a role)."""
    rank = {role: i for i, role in enumerate(CALL_ORDER)}
    return sorted(items, key=lambda item: rank.get(role_of(item), len(rank)))


def care_team(patient_ref: str, patient_key: str, members: list[dict],
              removed: list[dict]) -> tuple[dict, dict, Carry]:
    """(the CareTeam, its key, how it takes over the stored one): ``members`` from this message,
    ``removed`` the participants ROL-2 DE names."""
    team: dict = {
        "resourceType": "CareTeam",
        "identifier": [made_up("care-team", patient_key)],
        "status": "active",
        "category": [{"coding": [{"system": LOINC, "code": "LA28865-6",
                                  "display": "Longitudinal care-coordination focused care team"}]}],
        "name": "Équipe de soins du patient",
        "subject": {"reference": patient_ref},
    }
    if members:
        team["participant"] = ordered(members)
    gone = {(role_of(item), _who(item)) for item in removed}

    def merge(stored: dict, new: dict) -> dict:
        result = {key: value for key, value in stored.items() if key not in ("meta", "text", "id")}
        result.update(new)
        fresh = new.get("participant") or []
        named = {(role_of(item), _who(item)) for item in fresh}
        replaced_gp = any(role_of(item) == "general-practitioner" for item in fresh)
        kept = [item for item in stored.get("participant") or []
                if (role_of(item), _who(item)) not in named | gone
                and not (replaced_gp and role_of(item) == "general-practitioner")]
        result.pop("participant", None)
        if fresh or kept:
            result["participant"] = ordered([*fresh, *kept])
        return result

    return team, team["identifier"][0], merge
