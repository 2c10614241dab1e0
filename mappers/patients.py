"""Which Patient a feed's payload is about, for every feed: INS first, then the sender's own identifier, then the
Relais id. Pure.

``patient`` in a payload is ``{"ins": ...}``, ``{"identifier": {"system", "value"}}`` or ``{"id": ...}`` (several
may be given: the first of that order decides). A patient found by INS or identifier is only referenced, never
changed; an unknown one becomes a Patient at identity status PROV (FR Core identity reliability), tagged with the
feed, sender and payload it came from: a pre-DMP candidate whoever resolves it can trace. Its id is stable
(``json_feed.stable_id`` of its INS), so two feeds racing on the same new INS make one Patient.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from fhir_server import codes, write

from .json_feed import INVALID, find_or_create, reference, stable_id
from .partner import NOT_STORED, Problem

UNKNOWN_PATIENT = "unknown-patient"
UNREGISTERED_SYSTEM = "unregistered-system"
# Where a provisional Patient came from (meta.tag): the feed, and in its display the sender and payload
PATIENT_ORIGIN_SYSTEM = f"{codes.RELAIS_CODE_SYSTEMS}/patient-origin"
INS_TYPE_CODES = {codes.INS_NIR: "INS-NIR", codes.INS_NIA: "INS-NIA", codes.INS_NIR_TEST: "INS-NIR-TEST",
                  codes.INS_NIR_DEMO: "INS-NIR-DEMO"}
# 13 characters (sex, year, month, department: 2A/2B in Corsica, commune, order) and a 2-digit key
INS_PATTERN = r"^[0-9]{5}(?:[0-9]{2}|2A|2B)[0-9]{8}$"
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


@dataclass(frozen=True)
class Origin:
    """Which feed, sender and payload (its ``id``, or None) a Patient would be created from."""

    feed: str
    sender: str
    item: str | None = None


@dataclass
class Match:
    """The Patient a payload is about: ``reference`` (``Patient/<id>``), and the conditional create of a
    provisional Patient when it is found by INS or identifier (None: by Relais id, nothing to create)."""

    reference: str
    change: write.Change | None
    by: str  # ins | identifier | id


def ins_system(value: str) -> str:
    """The FR Core system of an INS: a NIA (temporary number) starts with 7 or 8, else it is a NIR."""
    return codes.INS_NIA if value[:1] in ("7", "8") else codes.INS_NIR


def ins_identifier(value: str, system: str | None = None) -> dict:
    system = system or ins_system(value)
    return {"use": "official",
            "type": {"coding": [{"system": codes.FR_CORE_IDENTIFIER_TYPES, "code": INS_TYPE_CODES[system]}]},
            "system": system, "value": value}


def match(spec: dict, origin: Origin, registered: tuple[str, ...] | None, where: str = "patient") -> Match:
    """The Patient ``spec`` names; raise a Problem naming the field when it cannot name one.

    ``registered``: the identifier systems the sender registered for its patients (None: any).
    """
    ins = spec.get("ins")
    ident = spec.get("identifier")
    if isinstance(ins, str):
        if not re.fullmatch(INS_PATTERN, ins):
            raise Problem(INVALID, f"{where}.ins: {ins!r} is not an INS (15 characters)", f"{where}.ins", status=400)
        # a NIR may be stored under its production, test or demo system: any of them is the same person
        systems = [codes.INS_NIR, codes.INS_NIR_TEST, codes.INS_NIR_DEMO, codes.INS_NIA]
        found_by = [{"system": s, "value": ins} for s in systems]
        identifiers = [ins_identifier(ins)]
        if isinstance(ident, dict):
            identifiers.append(_sender_identifier(ident, registered, where))
        return _found_or_new(stable_id("Patient", "ins", ins), identifiers, found_by, origin, where, "ins")
    if isinstance(ident, dict):
        identifier = _sender_identifier(ident, registered, where)
        if identifier["system"] in codes.INS_SYSTEMS:
            return match({"ins": identifier["value"]}, origin, registered, where)
        return _found_or_new(stable_id("Patient", identifier["system"], identifier["value"]), [identifier],
                             [identifier], origin, where, "identifier")
    rid = spec.get("id")
    if isinstance(rid, str):
        rid = rid.removeprefix("Patient/")
        if not _ID.fullmatch(rid):
            raise Problem(INVALID, f"{where}.id: {rid!r} is not a FHIR id", f"{where}.id", status=400)
        return Match(f"Patient/{rid}", None, "id")
    raise Problem(INVALID, f"{where}: give one of ins, identifier or id", where, status=400)


def _sender_identifier(ident: dict, registered: tuple[str, ...] | None, where: str) -> dict:
    system, value = ident.get("system"), ident.get("value")
    if not isinstance(system, str) or not system or not isinstance(value, str) or not value:
        raise Problem(INVALID, f"{where}.identifier: needs a system and a value", f"{where}.identifier", status=400)
    if registered is not None and system not in registered and system not in codes.INS_SYSTEMS:
        raise Problem(UNREGISTERED_SYSTEM, f"{where}.identifier.system: {system!r} is not an identifier system this"
                      " sender registered for its patients (relais feeds systems CLIENT --add SYSTEM)",
                      f"{where}.identifier.system", status=422)
    return {"system": system, "value": value}


def _found_or_new(pid: str, identifiers: list[dict], found_by: list[dict], origin: Origin, where: str,
                  by: str) -> Match:
    patient = provisional_patient(pid, identifiers, origin)
    return Match(reference(patient), find_or_create(patient, found_by, where), by)


def provisional_patient(pid: str, identifiers: list[dict], origin: Origin) -> dict:
    """A Patient known only by what a feed said: identity status PROV, and where it came from."""
    item = f", {origin.item}" if origin.item else ""
    return {
        "resourceType": "Patient",
        "id": pid,
        "meta": {
            "source": f"urn:relais:feed:{origin.feed}:{quote(origin.sender, safe='')}",
            "tag": [{"system": PATIENT_ORIGIN_SYSTEM, "code": origin.feed,
                     "display": f"créé par le flux {origin.feed} ({origin.sender}{item})"}],
        },
        "extension": [{"url": codes.IDENTITY_RELIABILITY, "extension": [
            {"url": "identityStatus", "valueCoding": {"system": codes.IDENTITY_STATUS_SYSTEM, "code": "PROV",
                                                      "display": "Identité provisoire"}}]}],
        "identifier": identifiers,
        "active": True,
    }


def unknown_patient(reference_: str, where: str = "patient.id") -> Problem:
    """The refusal of a payload about a Relais id that names no Patient."""
    return Problem(UNKNOWN_PATIENT, f"{where}: {reference_} names no patient on this server", where, status=422)


def named(problem: Problem, patient: str) -> Problem:
    """``problem``, or, when the write refused a reference to ``patient`` (a Relais id that names no Patient),
    the refusal on ``patient.id`` rather than on the resource that referenced it."""
    if problem.reason == NOT_STORED and f"{patient} names no resource" in problem.text:
        return unknown_patient(patient)
    return problem
