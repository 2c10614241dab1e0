"""SIU^S12 (new appointment), S13 (rescheduled), S14 (modified), S15 (cancelled) -> an Appointment, found
again by its filler appointment id (SCH-2, else the placer's SCH-1): every later message updates it. Its
participants are the patient, the personnel (AIP, as Practitioners) and the locations (AIL). Pure."""

from __future__ import annotations

from datetime import datetime, timedelta

from .changes import Changes, conditional, created_once
from .context import Context, first_order_number
from .datatypes import codeable_concept, date_time
from .er7 import field, repetitions, value
from .participants import display, practitioner
from .problems import Problem

# SCH-25 / AIS-10 filler status (table 0278) -> Appointment.status
_STATUS = {"PENDING": "pending", "WAITLIST": "waitlist", "BOOKED": "booked", "STARTED": "arrived",
           "COMPLETE": "fulfilled", "CANCELLED": "cancelled", "DC": "cancelled", "DELETED": "entered-in-error",
           "BLOCKED": "booked", "OVERBOOK": "booked", "NOSHOW": "noshow"}
_TRIGGER_STATUS = {"S12": "booked", "S13": "booked", "S14": "booked", "S15": "cancelled"}
_UNDATED = ("proposed", "cancelled", "waitlist")  # invariant app-3: every other appointment has its times
_MINUTES = {"MIN": 1, "M": 1, "H": 60, "HR": 60, "HOUR": 60, "S": 1 / 60, "D": 1440}


def changes(ctx: Context) -> Changes:
    """The Appointment of an SIU message (its Patient and Encounter are the caller's)."""
    _, sch = ctx.required("SCH")[0]
    out = Changes()
    identifiers = [i for i in (first_order_number(sch, 1, "PLAC", ctx.authority),
                               first_order_number(sch, 2, "FILL", ctx.authority)) if i]
    resource: dict = {"resourceType": "Appointment"}
    if identifiers:
        resource["identifier"] = identifiers
    stated = field(sch, 25, 1).upper() or field(sch, 25, 2).upper()
    status = _STATUS.get(stated) if ctx.head.trigger != "S15" else "cancelled"
    resource["status"] = status or _TRIGGER_STATUS[ctx.head.trigger]
    if resource["status"] == "cancelled" and repetitions(sch, 6):
        reason = codeable_concept(repetitions(sch, 6)[0])
        if reason:
            resource["cancelationReason"] = reason
    services = [c for c in (codeable_concept(rep) for _, ais in ctx.named("AIS") for rep in repetitions(ais, 3)) if c]
    if services:
        resource["serviceType"] = services
    for key, number in (("appointmentType", 8), ("reasonCode", 7)):
        reps = repetitions(sch, number)
        concept = codeable_concept(reps[0]) if reps else None
        if concept:
            resource[key] = [concept] if key == "reasonCode" else concept
    start, end, minutes = _times(ctx, sch)
    if start:
        resource["start"] = start
    if end:
        resource["end"] = end
    if minutes:
        resource["minutesDuration"] = minutes
    if not (start and end) and resource["status"] not in _UNDATED:
        raise Problem(101, "the appointment's start and end (AIS-4 and AIS-7, SCH-11, TQ1-7/8) are missing",
                      "SCH^1^11", "AE")
    participants = [{"actor": {"reference": ctx.patient}, "status": "accepted"}]
    for position, aip in ctx.named("AIP"):
        for xcn in repetitions(aip, 3)[:1]:
            made = practitioner(xcn, ctx.authority)
            actor = ({"reference": out.add(created_once("Practitioner", *made), f"AIP^{position}^3")} if made
                     else {"display": display(xcn)})
            participant: dict = {"actor": actor, "status": "accepted"}
            role = codeable_concept(repetitions(aip, 4)[0]) if repetitions(aip, 4) else None
            if role:
                participant["type"] = [role]
            participants.append(participant)
    for name, number in (("AIL", 3), ("AIG", 3)):
        for _, segment in ctx.named(name):
            reps = repetitions(segment, number)
            label = " ".join(p for p in (value(reps[0], 1), value(reps[0], 2), value(reps[0], 3),
                                         value(reps[0], 4, 1)) if p) if reps else ""
            if label:
                participants.append({"actor": {"display": label}, "status": "accepted"})
    resource["participant"] = participants
    filler = next((i for i in identifiers if i["type"]["coding"][0]["code"] == "FILL"), None)
    key = filler or (identifiers[0] if identifiers else None)
    if key is None:
        raise Problem(101, "SCH-1 and SCH-2 (appointment ids) are empty: the appointment cannot be found again",
                      "SCH^1^2", "AE")
    out.add(conditional("Appointment", resource, key), "SCH^1")
    return out


def _times(ctx: Context, sch) -> tuple[str | None, str | None, int | None]:
    """(start, end, minutes): AIS-4 with AIS-7/8, else SCH-11.4/11.5 with SCH-9/10, else TQ1-7/8."""
    start = end = None
    minutes = None
    for _, ais in ctx.named("AIS")[:1]:
        start = date_time(field(ais, 4, 1))
        minutes = _minutes(field(ais, 7), field(ais, 8, 1))
    if start is None:
        start = date_time(field(sch, 11, 4))
        end = date_time(field(sch, 11, 5))
    for _, tq1 in ctx.named("TQ1")[:1]:
        start = start or date_time(field(tq1, 7, 1))
        end = end or date_time(field(tq1, 8, 1))
    if minutes is None:
        minutes = _minutes(field(sch, 9), field(sch, 10, 1))
    if start and not end and minutes and "T" in start:
        end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    if start and "T" not in start:
        return None, None, minutes  # a day alone is not an instant
    return start, end, minutes


def _minutes(amount: str, units: str) -> int | None:
    try:
        number = float(amount)
    except ValueError:
        return None
    factor = _MINUTES.get(units.upper(), 1 if not units else None)
    if factor is None or number <= 0:
        return None
    return max(1, round(number * factor))
