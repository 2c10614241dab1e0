"""XCN (a professional in PD1-4, ROL-4, PV1-7/8/9/17, DG1-16, PR1-11) -> Practitioner, found again by
its national identifier: RPPS, IDNPS (ADELI is an IDNPS prefixed 0, FR Core). Pure."""

from __future__ import annotations

from fhir_server.codes import FR_CORE_IDENTIFIER_TYPES, IDNPS, RPPS

from .datatypes import address, authority_system, contact_point, local_system, person_name
from .er7 import value

IDNPS_OID = IDNPS.removeprefix("urn:oid:")


def identifiers(xcn, default_authority: str = "") -> list[dict]:
    """The identifiers of the professional of ``xcn`` (RPPS and its IDNPS ``8``+RPPS when either is given)."""
    number = value(xcn, 1)
    if not number:
        return []
    kind = value(xcn, 13).upper()
    namespace, universal, universal_type = value(xcn, 9, 1), value(xcn, 9, 2), value(xcn, 9, 3)
    if kind == "RPPS" or (not kind and universal == IDNPS_OID and len(number) == 11):
        return [_national(RPPS, "RPPS", number), _national(IDNPS, "IDNPS", "8" + number)]
    if kind == "ADELI":
        return [_national(IDNPS, "IDNPS", "0" + number)]
    if kind == "IDNPS" or universal == IDNPS_OID:
        found = [_national(IDNPS, "IDNPS", number)]
        if number.startswith("8") and len(number) == 12:  # 8 + RPPS (FR Core idNatPs prefixes)
            found.insert(0, _national(RPPS, "RPPS", number[1:]))
        return found
    system = authority_system(namespace, universal, universal_type) or (
        local_system(default_authority) if default_authority else None)
    local: dict = {"system": system} if system else {}
    local["value"] = number
    return [local]


def _national(system: str, kind: str, number: str) -> dict:
    return {"type": {"coding": [{"system": FR_CORE_IDENTIFIER_TYPES, "code": kind}]}, "system": system,
            "value": number}


def practitioner(xcn, default_authority: str, telecom=(), addresses=()) -> tuple[dict, list[dict]] | None:
    """(the Practitioner of ``xcn``, the identifiers any of which finds it), None without an id number;
    ``telecom`` (XTN) and ``addresses`` (XAD) from the segment that names it (ROL-12, ROL-11)."""
    found = identifiers(xcn, default_authority)
    if not found:
        return None
    resource: dict = {"resourceType": "Practitioner", "identifier": found}
    person = person_name(xcn)
    if person:
        resource["name"] = [person]
    points = [p for p in (contact_point(x, "work") for x in telecom) if p]
    if points:
        resource["telecom"] = points
    places = [a for a, _birth in (address(x) for x in addresses) if a]
    if places:
        resource["address"] = places
    return resource, found


def reference(ref: str, resource: dict) -> dict:
    """A Reference (``ref``: Practitioner/id) with its national identifier and name, read without a lookup."""
    found: dict = {"reference": ref}
    ident = resource["identifier"][0]
    found["identifier"] = {"system": ident.get("system"), "value": ident["value"]} if ident.get("system") else {
        "value": ident["value"]}
    person = (resource.get("name") or [{}])[0]
    display = " ".join([*person.get("given", [])[:1], person.get("family", "")]).strip()
    if display:
        found["display"] = display
    return found
