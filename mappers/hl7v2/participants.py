"""People and organisations named in a message (XCN, XON: PRT, ORC-12, AIP, PRD, RXA-10) as a Practitioner
or an Organization, found by their national identifier (IDNPS/RPPS, IDNST/FINESS). Pure."""

from __future__ import annotations

from fhir_server.codes import FINESS, IDNPS, IDNST, RPPS

from .datatypes import authority_system, contact_point, local_system, person_name
from .er7 import value

# XCN-13 / XON-7 identifier types that name a French national directory
PERSON_SYSTEMS = {"RPPS": RPPS, "IDNPS": IDNPS, "ADELI": "urn:oid:1.2.250.1.71.4.2.1"}
_FINESS_TYPES = ("FINEG", "FINEJ", "FINESS")


def practitioner(xcn, authority: str, telecom: list | None = None) -> tuple[dict, dict] | None:
    """(a Practitioner, the identifier it is found by) for an XCN with an id; None without one.

    An IDNPS of an RPPS professional is 8 followed by the RPPS number: both identifiers are kept, the
    IDNPS is the key (what CI-SIS messages carry).
    """
    number = value(xcn, 1)
    if not number:
        return None
    kind = value(xcn, 13).upper()
    system = PERSON_SYSTEMS.get(kind) or authority_system(value(xcn, 9, 1), value(xcn, 9, 2), value(xcn, 9, 3))
    key = {"system": system or local_system(authority), "value": number}
    identifiers = [key]
    if key["system"] == IDNPS and len(number) == 12 and number.startswith("8"):
        identifiers.append({"system": RPPS, "value": number[1:]})
    resource: dict = {"resourceType": "Practitioner", "identifier": identifiers}
    name = person_name(xcn)
    if name:
        resource["name"] = [name]
    points = [p for p in (contact_point(x, "work") for x in telecom or []) if p]
    if points:
        resource["telecom"] = points
    return resource, key


def display(xcn) -> str:
    """How an XCN without an id is shown (a Reference.display)."""
    name = person_name(xcn) or {}
    return " ".join([*name.get("given", []), name.get("family", "")]).strip()


def organization(xon, authority: str) -> tuple[dict, dict] | None:
    """(an Organization, its key) for an XON with an id (XON-10, else XON-3); None without one.

    A structure's IDNST is 1 followed by its FINESS number when XON-7 says FINEG/FINEJ: both are kept.
    """
    number = value(xon, 10) or value(xon, 3)
    name = value(xon, 1)
    if not number:
        return None
    kind = value(xon, 7).upper()
    system = authority_system(value(xon, 6, 1), value(xon, 6, 2), value(xon, 6, 3))
    identifiers = []
    if system == IDNST and kind in _FINESS_TYPES and len(number) == 10 and number.startswith("1"):
        identifiers = [{"system": IDNST, "value": number}, {"system": FINESS, "value": number[1:]}]
    elif kind in _FINESS_TYPES and system is None:
        identifiers = [{"system": FINESS, "value": number}]
    else:
        identifiers = [{"system": system or local_system(authority), "value": number}]
    resource: dict = {"resourceType": "Organization", "identifier": identifiers, "active": True}
    if name:
        resource["name"] = name
    return resource, identifiers[0]
