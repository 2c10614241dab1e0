"""PV1 -> Encounter (class, status from the trigger event, visit number, period, participants). Pure.

The Encounter is found again by its visit number (PV1-19). Its status follows the IHE PAM event;
events that say nothing of the visit (A08 update, A28/A31 person) keep the stored status. PV2 adds
the expected admission and discharge (R5's plannedStartDate/plannedEndDate as R4 extensions), ZBE
the movement (an entry of ``location``, see zbe.py).
"""

from __future__ import annotations

from collections.abc import Callable

from . import zbe
from .carry import kept
from .changes import Carry
from .datatypes import identifier, timestamp
from .er7 import field, repetitions, value

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PLANNED_START = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedStartDate"
PLANNED_END = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Encounter.plannedEndDate"
# PV1-2 patient class (table 0004) -> Encounter.class (v3 ActEncounterCode)
_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),  # obstetrics
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),  # recurring patient
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}
# trigger event -> Encounter.status (IHE PAM): A05 pre-admits, A03 discharges, A21 leave of absence,
# A11 and A38 cancel the admission and the pre-admission, A12 and A13 the transfer and the discharge
STATUS = {
    "A01": "in-progress",
    "A02": "in-progress",
    "A03": "finished",
    "A04": "in-progress",
    "A05": "planned",
    "A06": "in-progress",
    "A07": "in-progress",
    "A11": "cancelled",
    "A12": "in-progress",
    "A13": "in-progress",
    "A21": "onleave",
    "A22": "in-progress",
    "A38": "cancelled",
}
# PV1 fields naming the visit's professionals -> Encounter.participant.type (v3 ParticipationType)
PARTICIPANTS = ((7, "ATND", "attender"), (8, "REF", "referrer"), (9, "CON", "consultant"), (17, "ADM", "admitter"))


def encounter(pv1, trigger: str, authority: str, patient_ref: str, event_time: str) -> tuple[dict, dict] | None:
    """(the Encounter of ``pv1``, the visit-number identifier it is found by), or None without one.

    ``event_time`` (EVN-6, else EVN-2) dates the admission or discharge when PV1-44/45 are empty.
    An Encounter is found again by its visit number (PV1-19) only, so a PV1 without one is not mapped.
    """
    patient_class = field(pv1, 2).upper()
    visits = [v for v in (identifier(cx, authority) for cx in repetitions(pv1, 19)) if v]
    if patient_class == "N" or not visits:
        return None
    code, display = _CLASS.get(patient_class, ("UNK", "unknown"))
    system = NULL_FLAVOR if code == "UNK" else ACT_CODE
    status = STATUS.get(trigger) or ("finished" if field(pv1, 45, 1) else "in-progress")
    resource: dict = {
        "resourceType": "Encounter",
        "identifier": visits[:1],
        "status": status,
        "class": {"system": system, "code": code, "display": display},
        "subject": {"reference": patient_ref},
    }
    start = timestamp(pv1, 44, "PV1-44 (admit date)", "PV1^1^44") or (event_time if trigger in ("A01", "A04") else None)
    end = timestamp(pv1, 45, "PV1-45 (discharge date)", "PV1^1^45") or (event_time if trigger == "A03" else None)
    period = {key: when for key, when in (("start", start), ("end", end)) if when}
    if period:
        resource["period"] = period
    return resource, visits[0]


def participants(pv1, professional: Callable[[object], dict | None]) -> list[dict]:
    """PV1-7 attending, -8 referring, -9 consulting, -17 admitting doctors as Encounter participants;
    ``professional`` turns an XCN into a Reference to its Practitioner (None without an id)."""
    found = []
    for number, code, display in PARTICIPANTS:
        for xcn in repetitions(pv1, number):
            individual = professional(xcn)
            if individual is not None:
                found.append({"type": [{"coding": [{"system": PARTICIPATION_TYPE, "code": code, "display": display}]}],
                              "individual": individual})
    return found


def planned(pv2) -> list[dict]:
    """PV2-8 expected admission and PV2-9 expected discharge as the Encounter's planned dates."""
    found = []
    for number, url, what in ((8, PLANNED_START, "expected admit date"), (9, PLANNED_END, "expected discharge date")):
        converted = timestamp(pv2, number, f"PV2-{number} ({what})", f"PV2^1^{number}")
        if converted is not None:
            found.append({"url": url, "valueDateTime": converted})
    return found


# events that move the patient to PV1-3 (A12 takes the transfer back; cancels and updates move no one)
_MOVES = ("A01", "A02", "A04", "A05", "A06", "A07", "A21", "A22")
PV1_LOCATION = "urn:relais:hl7v2:pv1-3"


def point_of_care(pv1, trigger: str, event_time: str) -> tuple[dict, str] | None:
    """PV1-3 (assigned location: point of care, room, bed, description) as a location entry and what it
    does (INSERT, or UNDO for A12), for a message without ZBE; None when it names no place."""
    reps = repetitions(pv1, 3)
    if not reps:
        return None
    parts = [value(reps[0], n) for n in (1, 2, 3)]
    described = value(reps[0], 9)
    if not any(parts) and not described:
        return None
    if trigger == "A12":  # PV1-3 is where the patient was before: the transfer's location is taken back
        return {"location": {"display": described or " ".join(p for p in parts if p)}, "status": "active"}, "UNDO"
    if trigger not in _MOVES and trigger not in ("A03", "A08"):
        return None
    key = "/".join(parts)
    entry: dict = {
        "extension": [{"url": zbe.MOVEMENT, "extension": [
            {"url": "identifier", "valueIdentifier": {"system": PV1_LOCATION, "value": key}}]}],
        "location": {"display": described or " ".join(p for p in parts if p)},
        "status": "active",
    }
    if trigger in _MOVES and event_time:
        entry["period"] = {"start": event_time}
    return entry, "INSERT"


def carry(trigger: str, movement: tuple[dict, str] | None) -> Carry:
    """How the message's Encounter takes over the stored one: status kept for events that do not set
    it, period merged (A13 cancels the discharge: no end), the movement applied to ``location``."""

    def merge(stored: dict, new: dict) -> dict:
        result = kept(stored, new)
        if trigger not in STATUS and "end" not in (new.get("period") or {}):
            result["status"] = stored.get("status", new["status"])
        period = {**(stored.get("period") or {}), **(new.get("period") or {})}
        if trigger == "A13":
            period.pop("end", None)
        result.pop("period", None)
        if period:
            result["period"] = period
        locations = stored.get("location") or []
        if movement is not None:
            entry, kind = movement
            locations = zbe.merged(locations, [entry], kind)
        return finish(result, locations)

    return merge


def finish(resource: dict, locations: list[dict]) -> dict:
    """``resource`` with ``locations``; a finished or cancelled visit has no current movement."""
    resource.pop("location", None)
    if resource["status"] in ("finished", "cancelled"):
        locations = [{**entry, "status": "completed"} for entry in locations]
    if locations:
        resource["location"] = locations
    return resource


