"""ROL (role) -> a care role of fhir_server.codes.CARE_ROLE_SYSTEM and what the segment asks. Pure.

ROL-2 action (table 0287: AD add, UP update, DE delete, UC unchanged), ROL-3 role (table 0443 and
PAM France: ODRP, the médecin traitant declared to the Assurance Maladie; PP primary care provider),
ROL-4 the person (XCN), ROL-5/6 when the role begins and ends, ROL-9 provider type (an RPPS
profession code or SNOMED CT), ROL-11 address, ROL-12 phone.
"""

from __future__ import annotations

from fhir_server.codes import CARE_ROLES, SNOMED_CARE_ROLES

from .datatypes import timestamp
from .er7 import field, repetitions, value

# ROL-3 -> care role; other hospital roles (attending, admitting, consulting...) are "other"
ROLE_CODES = {"ODRP": "general-practitioner", "PP": "general-practitioner", "GP": "general-practitioner"}
# RPPS professions (ANS nomenclature TRE_G15) -> care role
PROFESSIONS = {"60": "nurse", "21": "pharmacist", "70": "physiotherapist"}


def care_role(rol) -> str:
    """The care role ROL-3 names (else the profession of ROL-9), ``other`` when neither says."""
    code = field(rol, 3, 1)
    for candidate in (code, code.lower()):
        if candidate in CARE_ROLES:
            return candidate
    if code.upper() in ROLE_CODES:
        return ROLE_CODES[code.upper()]
    if code in SNOMED_CARE_ROLES:
        return SNOMED_CARE_ROLES[code]
    for rep in repetitions(rol, 9):
        kind = value(rep, 1)
        if kind in SNOMED_CARE_ROLES:
            return SNOMED_CARE_ROLES[kind]
        if kind in PROFESSIONS:
            return PROFESSIONS[kind]
    return "other"


def action(rol) -> str:
    """ROL-2 (UC when empty)."""
    return field(rol, 2).upper() or "UC"


def person(rol):
    """ROL-4, the first XCN (None when absent)."""
    reps = repetitions(rol, 4)
    return reps[0] if reps else None


def role_code(rol) -> str:
    """ROL-3's code, as sent (upper case)."""
    return field(rol, 3, 1).upper()


def period(rol, index: int) -> dict | None:
    """ROL-5 and ROL-6 as a Period (the care team reads an ended role as past)."""
    found = {}
    for number, bound in ((5, "start"), (6, "end")):
        when = timestamp(rol, number, f"ROL-{number}", f"ROL^{index}^{number}")
        if when:
            found[bound] = when
    return found or None
