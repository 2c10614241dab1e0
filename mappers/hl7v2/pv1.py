"""PV1 -> Encounter (class, status from the trigger event, visit number, period). Pure."""

from __future__ import annotations

from .datatypes import date_time, identifier
from .er7 import field, repetitions
from .problems import Problem

ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
NULL_FLAVOR = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor"
# PV1-2 patient class (table 0004) -> Encounter.class (v3 ActEncounterCode)
_CLASS = {
    "I": ("IMP", "inpatient encounter"),
    "B": ("IMP", "inpatient encounter"),  # obstetrics
    "O": ("AMB", "ambulatory"),
    "R": ("AMB", "ambulatory"),  # recurring patient
    "E": ("EMER", "emergency"),
    "P": ("PRENC", "pre-admission"),
}
# trigger event -> Encounter.status (IHE PAM: A05 pre-admits, A03 discharges, A11/A13 cancel)
STATUS = {
    "A01": "in-progress",
    "A02": "in-progress",
    "A04": "in-progress",
    "A05": "planned",
    "A06": "in-progress",
    "A07": "in-progress",
    "A03": "finished",
    "A11": "cancelled",
    "A13": "in-progress",
}


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
    start = _time(pv1, 44, "PV1^1^44", "PV1-44 (admit date)") or (event_time if trigger in ("A01", "A04") else None)
    end = _time(pv1, 45, "PV1^1^45", "PV1-45 (discharge date)") or (event_time if trigger == "A03" else None)
    period = {key: when for key, when in (("start", start), ("end", end)) if when}
    if period:
        resource["period"] = period
    return resource, visits[0]


def _time(pv1, number: int, location: str, what: str) -> str | None:
    text = field(pv1, number, 1)
    if not text:
        return None
    converted = date_time(text)
    if converted is None:
        raise Problem(102, f"{what} {text!r} is not an HL7 timestamp", location)
    return converted
