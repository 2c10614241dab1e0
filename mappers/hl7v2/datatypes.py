"""HL7 v2 data types as FHIR data types: CX, XPN, XAD, XTN, TS/DTM, CE/CWE, HD. Pure functions."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from urllib.parse import quote
from zoneinfo import ZoneInfo

from .er7 import field, value
from .problems import Problem

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
LOCAL_SYSTEM = "urn:relais:hl7v2:"  # + the assigning authority's name, when it has no OID
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
# Table 0203 identifier types that HL7's FHIR code system lists (INS and other national codes are not in it)
_TYPES_0203 = frozenset({"AN", "BR", "DL", "DN", "EN", "JHN", "MD", "MR", "NH", "NI", "NPI", "PI", "PN", "PPN",
                         "PT", "SB", "SN", "SS", "TAX", "VN", "XX"})
# CE/CWE coding systems (table 0396) whose FHIR system URI is known
CODING_SYSTEMS = {
    "LN": "http://loinc.org",
    "SNM": "http://snomed.info/sct",
    "SCT": "http://snomed.info/sct",
    "UCUM": "http://unitsofmeasure.org",
    "I10": "http://hl7.org/fhir/sid/icd-10",
    "I9": "http://hl7.org/fhir/sid/icd-9-cm",
    "I9C": "http://hl7.org/fhir/sid/icd-9-cm",
    "HL70078": "http://terminology.hl7.org/CodeSystem/v2-0078",
    "HL70357": "http://terminology.hl7.org/CodeSystem/v2-0357",
}
_NAME_USE = {"L": "official", "D": "usual", "M": "maiden", "N": "nickname", "A": "anonymous", "S": "anonymous"}
# XAD-7 address type (table 0190) -> Address.use, or Address.type for a mailing address (HL7 v2-to-FHIR)
_ADDRESS_USE = {"H": "home", "B": "work", "O": "work", "C": "temp", "BA": "old"}
_ADDRESS_TYPE = {"M": "postal", "SH": "postal"}
CONTACT_POINT_EXTENSION = "http://hl7.org/fhir/StructureDefinition/contactpoint-extension"
_PHONE_USE = {"PRN": "home", "ORN": "home", "VHN": "home", "WPN": "work", "ASN": "temp", "EMR": "temp"}
_sender_zone = ZoneInfo("Europe/Paris")
_DATE = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\.\d{1,4})?([+-]\d{4})?$")


def local_system(name: str) -> str:
    """The identifier system of an assigning authority known by a name only (the sender's domain)."""
    return LOCAL_SYSTEM + quote(name, safe="-._~")


def authority_system(namespace: str, universal: str, universal_type: str = "") -> str | None:
    """The identifier system of an assigning authority (HD): ``urn:oid:`` for an OID, else a local URI."""
    if universal and _OID.match(universal):
        return f"urn:oid:{universal}"
    if universal and universal_type.upper() == "UUID":
        return f"urn:uuid:{universal.lower()}"
    if universal and universal_type.upper() in ("URI", "URL") and ":" in universal:
        return universal
    name = namespace or universal
    return local_system(name) if name else None


def identifier(cx, default_authority: str = "") -> dict | None:
    """A CX repetition as an Identifier; ``default_authority`` when the CX names none (the sender's domain)."""
    id_value = value(cx, 1)
    if not id_value:
        return None
    namespace, universal, kind = value(cx, 4, 1), value(cx, 4, 2), value(cx, 4, 3)
    system = authority_system(namespace, universal, kind) or (
        local_system(default_authority) if default_authority else None
    )
    result: dict = {}
    id_type = value(cx, 5)
    if id_type:
        result["type"] = (
            {"coding": [{"system": V2_0203, "code": id_type}]} if id_type in _TYPES_0203 else {"text": id_type}
        )
    if system:
        result["system"] = system
    result["value"] = id_value
    if namespace:
        result["assigner"] = {"display": namespace}
    return result


def person_name(xcn) -> dict | None:
    """XCN-2 (family), XCN-3 and XCN-4 (given), XCN-6 (prefix) as a HumanName."""
    family = value(xcn, 2, 1)
    given = [part for part in (value(xcn, 3), value(xcn, 4)) if part]
    if not family and not given:
        return None
    name: dict = {}
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    if value(xcn, 6):
        name["prefix"] = [value(xcn, 6)]
    return name


def human_name(xpn) -> dict | None:
    """An XPN repetition as a HumanName (family, given and middle names, prefix, suffix, use)."""
    family = value(xpn, 1, 1)
    given = [part for part in (value(xpn, 2), value(xpn, 3)) if part]
    if not family and not given:
        return None
    name: dict = {}
    use = _NAME_USE.get(value(xpn, 7))
    if use:
        name["use"] = use
    if family:
        name["family"] = family
    if given:
        name["given"] = given
    if value(xpn, 5):
        name["prefix"] = [value(xpn, 5)]
    if value(xpn, 4):
        name["suffix"] = [value(xpn, 4)]
    return name


def set_sender_zone(name: str) -> None:
    """The zone (IANA name, RELAIS_HL7V2_TZ) in which a time without a UTC offset is read."""
    global _sender_zone
    _sender_zone = ZoneInfo(name)


def sender_zone() -> ZoneInfo:
    return _sender_zone


def _street(xad) -> str:
    """XAD-1 (SAD) as one line: the street address, else the dwelling number and the street name.

    A SAD sent as subcomponents (``&Warden Av&8200``) keeps its street name; before v2.5 hl7apy reads
    XAD-1 as one string, so its subcomponents are split here.
    """
    first, name, number = value(xad, 1, 1), value(xad, 1, 2), value(xad, 1, 3)
    whole = value(xad, 1)
    if not name and not number and "&" in whole:
        first, name, number = (whole.split("&") + ["", ""])[:3]
    if first.strip():
        return first.strip()
    return " ".join(part.strip() for part in (number, name) if part.strip())


def address(xad) -> tuple[dict | None, bool]:
    """An XAD repetition as (Address, is the birth place); None when it holds nothing."""
    lines = [part for part in (_street(xad), value(xad, 2, 1)) if part]
    result: dict = {}
    kind = value(xad, 7, 1)
    if kind in _ADDRESS_USE:
        result["use"] = _ADDRESS_USE[kind]
    if kind in _ADDRESS_TYPE:
        result["type"] = _ADDRESS_TYPE[kind]
    if lines:
        result["line"] = lines
    # each part's first subcomponent: v2.7 made XAD-9 a CWE (code&text&system), its code is the district
    for key, position in (("city", 3), ("state", 4), ("postalCode", 5), ("country", 6), ("district", 9)):
        part = value(xad, position, 1)
        if part:
            result[key] = part
    if not any(k in result for k in ("line", "city", "state", "postalCode", "country", "district")):
        return None, False
    birth_place = kind in ("BDL", "BR")  # French PAM: BDL is the birth place (INSEE code in XAD-9)
    return result, birth_place


def contact_point(xtn, default_use: str) -> dict | None:
    """An XTN repetition as a ContactPoint (phone, fax, pager, email), as HL7's v2-to-FHIR mapping reads it.

    The email is XTN-4 (or an address with an @ in XTN-1 of Internet equipment); a number is XTN-5/6/7
    (country, area, local) when XTN-7 is valued, else XTN-12, else XTN-1; XTN-8 (extension) is the
    contactpoint-extension, never part of the number or an email.
    """
    equipment = value(xtn, 3)
    email = value(xtn, 4)
    if not email and equipment in ("Internet", "X.400") and "@" in value(xtn, 1):
        email = value(xtn, 1)
    if email:
        point: dict = {"system": "email", "value": email}
        use = _PHONE_USE.get(value(xtn, 2))
        if use:
            point["use"] = use
        return point
    if equipment in ("Internet", "X.400"):
        return None  # a network address without one: nothing to call or write to
    local = value(xtn, 7)
    if local:
        country, area = value(xtn, 5), value(xtn, 6)
        number = " ".join(part for part in (f"+{country.lstrip('+')}" if country else "", area, local) if part)
    else:
        number = value(xtn, 12) or value(xtn, 1)
    if not number:
        return None
    point = {"system": "fax" if equipment == "FX" else "pager" if equipment == "BP" else "phone", "value": number}
    extension = value(xtn, 8)
    if extension:
        point["extension"] = [{"url": CONTACT_POINT_EXTENSION, "valueString": extension}]
    point["use"] = "mobile" if equipment == "CP" else _PHONE_USE.get(value(xtn, 2), default_use)
    return point


def date_time(text: str, zone_info: ZoneInfo | None = None) -> str | None:
    """An HL7 TS/DTM (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]) as a FHIR date or dateTime; None if invalid.

    Without an offset the time is the sender's local time (``zone_info``, else RELAIS_HL7V2_TZ).
    """
    match = _DATE.match(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if month and not 1 <= int(month) <= 12 or day and not 1 <= int(day) <= 31:
        return None
    if hour is None:
        return "-".join(part for part in (year, month, day) if part)
    if int(hour) > 23 or minute and int(minute) > 59 or second and int(second) > 59:
        return None
    if zone and not (int(zone[1:3]) <= 14 and int(zone[3:]) <= 59):
        return None
    try:
        # FHIR needs a zone once there is a time; HL7 says a time without one is the sender's local time
        local = datetime(int(year), int(month), int(day), int(hour), int(minute or 0), int(second or 0),
                         tzinfo=zone_info or _sender_zone)
    except ValueError:
        return None  # 30 February
    if not zone:
        zone = local.strftime("%z")
    return f"{year}-{month}-{day}T{hour}:{minute or '00'}:{second or '00'}{fraction or ''}{zone[:3]}:{zone[3:]}"



def timestamp(segment, number: int, what: str, location: str, kind: str = "timestamp") -> str | None:
    """Field ``number`` of ``segment`` as a FHIR dateTime (None when empty); one that is not an HL7 ``kind``
    (timestamp or date) is AE 102 naming ``what`` at ``location``."""
    text = field(segment, number, 1)
    if not text:
        return None
    converted = date_time(text)
    if converted is None:
        raise Problem(102, f"{what} {text!r} is not an HL7 {kind}", location)
    return converted

def date_only(text: str) -> str | None:
    """An HL7 date or timestamp as a FHIR date (birthDate keeps the day only)."""
    converted = date_time(text)
    return converted[:10] if converted else None


def coding_system(name: str) -> str | None:
    """The FHIR system URI of an HL7 coding system name (table 0396), when it has one."""
    if not name:
        return None
    known = CODING_SYSTEMS.get(name.upper())
    if known:
        return known
    if _OID.match(name):
        return f"urn:oid:{name}"
    if name.upper().startswith("HL7") and name[3:].isdigit():
        return f"http://terminology.hl7.org/CodeSystem/v2-{name[3:]}"
    return LOCAL_SYSTEM + "codesystem:" + quote(name, safe="-._~")


def codeable_concept(ce) -> dict | None:
    """A CE/CWE as a CodeableConcept (identifier and alternate identifier)."""
    codings = []
    for first in (1, 4):
        code, display, system = value(ce, first), value(ce, first + 1), value(ce, first + 2)
        if not code:
            continue
        coding: dict = {}
        uri = coding_system(system)
        if uri:
            coding["system"] = uri
        coding["code"] = code
        if display:
            coding["display"] = display
        codings.append(coding)
    text = value(ce, 9) or value(ce, 2) or value(ce, 5)
    if not codings and not text:
        return None
    concept: dict = {}
    if codings:
        concept["coding"] = codings
    if text:
        concept["text"] = text
    return concept


def provisional_id(resource_type: str, key: str) -> str:
    """A stable id standing for a resource found by ``key`` until the store says which it is (UUID v5)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:relais:hl7v2:{resource_type}:{key}"))
