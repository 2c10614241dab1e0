"""Whom the coordinator calls about a patient, in order: pure functions over a Patient and its CareTeams.

The order is ``codes.CALL_ORDER``: médecin traitant, advanced-practice nurse, nurse, pharmacist,
physiotherapist, then the rest. A member's role is read from ``CareTeam.participant.role`` codings in
``CARE_ROLE_SYSTEM`` or SNOMED CT (``SNOMED_CARE_ROLES``); ``Patient.generalPractitioner`` is the
médecin traitant. A member named twice keeps its first role in the call order. The answer is a List
(``call_list``): R4's resource for an ordered set of references, ``orderedBy`` priority, each entry's
``flag`` its role, so any FHIR client reads the order without knowing Relais.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from .. import codes
from ..search.references import split_reference

SNOMED = "http://snomed.info/sct"
GENERAL_PRACTITIONER = "general-practitioner"
OTHER = "other"
CALL_LIST_CODE = {"system": f"{codes.RELAIS_CODE_SYSTEMS}/list-code", "code": "call-order",
                  "display": "Équipe de soins, dans l'ordre d'appel"}  # fmt: skip
LIST_ORDER = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/list-order", "code": "priority",
                          "display": "Sorted by Priority"}]}  # fmt: skip
# Members the coordinator does not call about the patient: the patient, a team within the team.
_NOT_CALLED = frozenset({"Patient", "CareTeam", "Group", "Device"})

Ref = tuple[str, str]


def care_role(concepts: Iterable[object]) -> str | None:
    """The role key (``codes.CARE_ROLES``) of a participant's ``role`` CodeableConcepts, the earliest in
    the call order when several are given; None when none is known."""
    found = []
    for concept in concepts:
        codings = concept.get("coding") if isinstance(concept, dict) else None
        for coding in codings if isinstance(codings, list) else []:
            if not isinstance(coding, dict):
                continue
            system, code = coding.get("system"), coding.get("code")
            if system == codes.CARE_ROLE_SYSTEM and code in codes.CARE_ROLES:
                found.append(code)
            elif system == SNOMED and code in codes.SNOMED_CARE_ROLES:
                found.append(codes.SNOMED_CARE_ROLES[code])
    return min(found, key=codes.CALL_ORDER.index) if found else None


def _ended(period: object, today: str) -> bool:
    end = period.get("end") if isinstance(period, dict) else None
    return isinstance(end, str) and end[:10] < today


def call_order(patient: dict, care_teams: list[dict], today: str) -> list[tuple[Ref, str]]:
    """(member, role) in the order to call: the patient's general practitioners, then active CareTeam
    participants (their participation not ended before ``today``, YYYY-MM-DD) by role, in the order given."""
    ranked: list[tuple[int, int, Ref, str]] = []
    for reference in patient.get("generalPractitioner") or []:
        ref = _ref(reference)
        if ref is not None:
            ranked.append((codes.CALL_ORDER.index(GENERAL_PRACTITIONER), len(ranked), ref, GENERAL_PRACTITIONER))
    for team in care_teams:
        if team.get("status") != "active":
            continue
        for participant in team.get("participant") or []:
            if not isinstance(participant, dict) or _ended(participant.get("period"), today):
                continue
            ref = _ref(participant.get("member"))
            if ref is None:
                continue
            role = care_role(participant.get("role") or []) or OTHER
            ranked.append((codes.CALL_ORDER.index(role), len(ranked), ref, role))
    ordered: list[tuple[Ref, str]] = []
    seen: set[Ref] = set()
    for _, _, ref, role in sorted(ranked):
        if ref not in seen:
            seen.add(ref)
            ordered.append((ref, role))
    return ordered


def _ref(reference: object) -> Ref | None:
    value = reference.get("reference") if isinstance(reference, dict) else None
    if not isinstance(value, str):
        return None
    rtype, rid = split_reference(value)
    if rtype is None or rid is None or rtype in _NOT_CALLED:
        return None
    return rtype, rid


def call_list(patient_id: str, ordered: list[tuple[Ref, str]], names: dict[Ref, str], date: str) -> dict:
    """The List of whom to call about Patient/``patient_id``, in ``ordered`` order (not stored: built for
    each answer, so it has no id; ``names``: a display per member, ``date``: when it was built)."""
    return {
        "resourceType": "List",
        "status": "current",
        "mode": "snapshot",
        "title": "À appeler",
        "code": {"coding": [CALL_LIST_CODE], "text": CALL_LIST_CODE["display"]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": date,
        "orderedBy": LIST_ORDER,
        "entry": [
            {
                "flag": {"coding": [{"system": codes.CARE_ROLE_SYSTEM, "code": role,
                                     "display": codes.CARE_ROLES[role]}]},  # fmt: skip
                "item": {"reference": f"{rtype}/{rid}", **({"display": names[(rtype, rid)]}
                                                           if (rtype, rid) in names else {})},  # fmt: skip
            }
            for (rtype, rid), role in ordered
        ],
        **({} if ordered else {"emptyReason": {"text": "Aucun professionnel connu pour ce patient"}}),
    }


def call_list_url(patient_id: str, ordered: list[tuple[Ref, str]]) -> str:
    """The List's fullUrl, a ``urn:uuid`` (it cannot be read back), stable: the same patient and the same
    team give the same one from one answer to the next."""
    key = patient_id + "|" + "|".join(f"{t}/{i}={role}" for (t, i), role in ordered)
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'relais:call-order:' + key)}"


def display_name(resource: dict) -> str | None:
    """A person's or organisation's name as the coordinator reads it ("Dr Marie Durand")."""
    name = resource.get("name")
    if isinstance(name, str):
        return name
    for human in name if isinstance(name, list) else []:
        if not isinstance(human, dict):
            continue
        if isinstance(human.get("text"), str):
            return human["text"]
        parts = [*(human.get("prefix") or []), *(human.get("given") or []), human.get("family")]
        text = " ".join(p for p in parts if isinstance(p, str))
        if text:
            return text
    return None
