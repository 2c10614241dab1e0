"""NK1 (next of kin, associated parties) -> RelatedPerson and an entry of Patient.contact, as HL7's
v2-to-FHIR ConceptMap maps it. Pure.

NK1-2 name, NK1-3 relationship (table 0063), NK1-4 address, NK1-5/6 phones, NK1-7 contact role
(table 0131: C emergency contact, N next of kin...), NK1-8/9 period, NK1-15 sex, NK1-16 birth date,
NK1-33 identifiers. A RelatedPerson is found again by its patient and NK1-33, else its patient, name
and relationship.
"""

from __future__ import annotations

from .changes import made_up
from .datatypes import address, codeable_concept, contact_point, date_only, human_name, identifier, timestamp
from .er7 import field, repetitions
from .problems import Problem

V2_0063 = "http://terminology.hl7.org/CodeSystem/v2-0063"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}


def _coded(segment, number: int, default_system: str) -> dict | None:
    reps = repetitions(segment, number)
    concept = codeable_concept(reps[0]) if reps else None
    if concept:
        for coding in concept.get("coding") or []:
            coding.setdefault("system", default_system)
    return concept


def related(nk1, index: int, patient_ref: str, patient_key: str, authority: str) -> tuple[dict, dict, dict] | None:
    """(the RelatedPerson of ``nk1``, its key, the Patient.contact entry), None when it names no one."""
    where = f"NK1^{index}"
    names = [n for n in (human_name(x) for x in repetitions(nk1, 2)) if n]
    telecom = [t for t in (contact_point(x, "home") for x in repetitions(nk1, 5)) if t]
    telecom += [t for t in (contact_point(x, "work") for x in repetitions(nk1, 6)) if t]
    places = [a for a, _birth in (address(x) for x in repetitions(nk1, 4)) if a]
    if not names and not telecom:
        return None
    relationships = [c for c in (_coded(nk1, 3, V2_0063), _coded(nk1, 7, V2_0131)) if c]
    person: dict = {"resourceType": "RelatedPerson", "active": True, "patient": {"reference": patient_ref}}
    contact: dict = {}
    if relationships:
        person["relationship"] = relationships
        contact["relationship"] = relationships
    if names:
        person["name"] = names
        contact["name"] = names[0]
    if telecom:
        person["telecom"] = telecom
        contact["telecom"] = telecom
    if places:
        person["address"] = places
        contact["address"] = places[0]
    gender = field(nk1, 15).upper()
    if gender:
        person["gender"] = contact["gender"] = _GENDER.get(gender, "unknown")
    birth = field(nk1, 16, 1)
    if birth:
        person["birthDate"] = date_only(birth) or _bad(f"NK1-16 (birth date) {birth!r}", f"{where}^16")
    period = {}
    for number, bound in ((8, "start"), (9, "end")):
        when = timestamp(nk1, number, f"NK1-{number}", f"{where}^{number}", "date")
        if when:
            period[bound] = when
    if period:
        person["period"] = contact["period"] = period
    # a RelatedPerson is one person's relation to one patient: the mother of two patients is two of
    # them, so the patient is part of the key even when NK1-33 identifies the person
    own = [i for i in (identifier(cx, authority) for cx in repetitions(nk1, 33)) if i]
    first = names[0] if names else {}
    relation = ((relationships[0].get("coding") or [{}])[0].get("code", "") if relationships else "")
    who = (own[0].get("system", ""), own[0]["value"]) if own else (
        first.get("family", ""), " ".join(first.get("given", [])), relation)
    key = made_up("related-person", patient_key, *who)
    person["identifier"] = [key, *own]
    return person, key, contact


def _bad(what: str, location: str) -> str:
    raise Problem(102, f"{what} is not an HL7 date", location)
