"""PID -> Patient (identifiers, name, birth date, gender, address, telecom, death). Pure."""

from __future__ import annotations

from .datatypes import address, contact_point, date_only, date_time, human_name, identifier
from .er7 import field, repetitions
from .problems import Problem

BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
_GENDER = {"M": "male", "F": "female", "O": "other", "A": "other", "N": "other", "U": "unknown"}


def patient(pid, authority: str) -> tuple[dict, dict]:
    """(the Patient of ``pid``, the identifier it is found by); ``authority`` names ids that carry none.

    The key is the first PI (the sender's own patient id), else the first PID-3 repetition: the
    sender's id is on every message of that sender, a national id (INS) may come later.
    """
    identifiers = [i for i in (identifier(cx, authority) for cx in repetitions(pid, 3)) if i]
    if not identifiers:
        raise Problem(101, "PID-3 (patient identifier list) carries no identifier", "PID^1^3")
    key = next((i for i in identifiers if _type_code(i) == "PI"), identifiers[0])
    resource: dict = {"resourceType": "Patient", "identifier": identifiers}
    names = [n for n in (human_name(xpn) for xpn in repetitions(pid, 5)) if n]
    if names:
        resource["name"] = names
    telecom = [t for t in (contact_point(x, "home") for x in repetitions(pid, 13)) if t]
    telecom += [t for t in (contact_point(x, "work") for x in repetitions(pid, 14)) if t]
    if telecom:
        resource["telecom"] = telecom
    gender = field(pid, 8)
    if gender:
        resource["gender"] = _GENDER.get(gender.upper(), "unknown")
    birth = field(pid, 7, 1)
    if birth:
        resource["birthDate"] = date_only(birth) or _bad_date("PID^1^7", "PID-7 (date of birth)", birth)
    death = field(pid, 29, 1)
    if death:
        resource["deceasedDateTime"] = date_time(death) or _bad_date("PID^1^29", "PID-29 (death date)", death)
    elif field(pid, 30) in ("Y", "N"):
        resource["deceasedBoolean"] = field(pid, 30) == "Y"
    addresses = []
    for xad in repetitions(pid, 11):
        found, birth_place = address(xad)
        if found and birth_place:
            resource.setdefault("extension", []).append({"url": BIRTH_PLACE, "valueAddress": found})
        elif found:
            addresses.append(found)
    if addresses:
        resource["address"] = addresses
    return resource, key


def _type_code(ident: dict) -> str:
    kind = ident.get("type") or {}
    codings = kind.get("coding") or [{}]
    return codings[0].get("code") or kind.get("text") or ""


def _bad_date(location: str, what: str, text: str) -> str:
    raise Problem(102, f"{what} {text!r} is not an HL7 date", location)
