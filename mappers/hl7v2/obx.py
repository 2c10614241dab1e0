"""OBX -> Observation (status, code, value by OBX-2, units, reference range, interpretation, time). Pure."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from fhir_server.fhirjson import FHIRDecimal

from .datatypes import CODING_SYSTEMS, codeable_concept, coding_system, date_time, timestamp
from .er7 import field, repetitions, value
from .problems import Problem

UCUM = CODING_SYSTEMS["UCUM"]
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
# OBX-11 result status (table 0085) -> Observation.status
_STATUS = {
    "F": "final", "C": "corrected", "A": "amended", "P": "preliminary", "R": "preliminary", "S": "preliminary",
    "I": "registered", "O": "registered", "X": "cancelled", "D": "entered-in-error", "W": "entered-in-error",
    "U": "final",
}
_COMPARATORS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "": None, "=": None}
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*-\s*(-?\d+(?:\.\d+)?)\s*$")
_BOUND = re.compile(r"^\s*(<=?|>=?)\s*(-?\d+(?:\.\d+)?)\s*$")


def observation(obx, index: int, subject: str, encounter: str | None, order_code: dict | None,
                order_time: str | None) -> dict:
    """The Observation of the OBX at position ``index`` (1-based) of its message.

    ``order_code`` (OBR-4) stands for a missing OBX-3, ``order_time`` (OBR-7) for a missing OBX-14.
    """
    where = f"OBX^{index}"
    code = _concept(repetitions(obx, 3)) or order_code
    if code is None:
        raise Problem(101, "OBX-3 (observation identifier) is empty and no OBR-4 stands for it", f"{where}^3")
    status_code = field(obx, 11).upper()
    resource: dict = {
        "resourceType": "Observation",
        "status": _STATUS.get(status_code, "unknown"),
        "code": code,
        "subject": {"reference": subject},
    }
    if encounter:
        resource["encounter"] = {"reference": encounter}
    when = timestamp(obx, 14, "OBX-14 (observation time)", f"{where}^14") or order_time
    if when:
        resource["effectiveDateTime"] = when
    unit = _unit(obx)
    resource.update(_value(obx, field(obx, 2, 1).upper(), unit, where))
    ranges = field(obx, 7)
    if ranges:
        resource["referenceRange"] = [_reference_range(ranges, unit)]
    flags = [value(rep, 1) for rep in repetitions(obx, 8) if value(rep, 1)]
    if flags:
        resource["interpretation"] = [{"coding": [{"system": INTERPRETATION, "code": flag}]} for flag in flags]
    return resource


def _concept(reps: list) -> dict | None:
    return codeable_concept(reps[0]) if reps else None


def _unit(obx) -> dict:
    """OBX-6 as the unit fields of a Quantity (UCUM system and code only when the sender says UCUM)."""
    reps = repetitions(obx, 6)
    if not reps:
        return {}
    code, text, system = value(reps[0], 1), value(reps[0], 2), value(reps[0], 3)
    if not code and not text:
        return {}
    unit: dict = {"unit": text or code}
    uri = coding_system(system)
    if code and uri == UCUM:
        unit.update(system=UCUM, code=code)
    return unit


def _number(text: str, location: str) -> int | float:
    """An NM as a FHIR decimal with the sender's digits (5.40 stays 5.40: FHIR says precision is significant)."""
    try:
        number = Decimal(text.strip())
    except InvalidOperation:
        raise Problem(102, f"{text!r} is not a number", location) from None
    if not number.is_finite():
        raise Problem(102, f"{text!r} is not a number", location)
    if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
        return int(number)
    # fixed-point text (HL7 NM has no exponent), as FHIR's decimal grammar wants it: +5.4 -> 5.4, .5 -> 0.5
    return FHIRDecimal(format(number, "f"))


def _value(obx, kind: str, unit: dict, where: str) -> dict:
    reps = repetitions(obx, 5)
    location = f"{where}^5"
    if not reps or not any(rep.to_er7() for rep in reps):
        return {}
    if kind == "NM":
        return {"valueQuantity": {"value": _number(value(reps[0], 1), location), **unit}}
    if kind in ("ST", "TX", "FT"):
        # each repetition of a text value is one line
        return {"valueString": "\n".join(value(rep) for rep in reps)}
    if kind in ("CE", "CWE", "CNE", "CF"):
        concept = codeable_concept(reps[0])
        return {"valueCodeableConcept": concept} if concept else {}
    if kind == "SN":
        return _structured_numeric(reps[0], unit, location)
    if kind in ("DT", "TS", "DTM"):
        converted = date_time(value(reps[0], 1))
        if converted is None:
            raise Problem(102, f"OBX-5 {value(reps[0], 1)!r} is not an HL7 date", location)
        return {"valueDateTime": converted}
    raise Problem(102, f"OBX-2 value type {kind or '(empty)'!r} is not one this feed maps"
                       " (NM, SN, ST, TX, FT, CE, CWE, CNE, DT, TS, DTM)", f"{where}^2")


def _structured_numeric(sn, unit: dict, location: str) -> dict:
    """SN: comparator, number, separator, number: a Quantity (with comparator), a Range or a Ratio."""
    comparator, first, separator, second = (value(sn, p) for p in (1, 2, 3, 4))
    if not first:
        raise Problem(102, "SN value without its first number (SN-2)", location)
    low = _number(first, location)
    if separator in ("-", ":", "/") and second:
        high = _number(second, location)
        if separator == "-":
            return {"valueRange": {"low": {"value": low, **unit}, "high": {"value": high, **unit}}}
        return {"valueRatio": {"numerator": {"value": low}, "denominator": {"value": high}}}
    if comparator not in _COMPARATORS:
        raise Problem(102, f"SN comparator {comparator!r} has no FHIR equivalent", location)
    quantity = {"value": low, **unit}
    if _COMPARATORS[comparator]:
        quantity["comparator"] = _COMPARATORS[comparator]
    return {"valueQuantity": quantity}


def _reference_range(text: str, unit: dict) -> dict:
    """OBX-7 (``70-105``, ``<5``, ``>=1.2``) as a referenceRange; other forms are kept as its text."""
    both = _RANGE.match(text)
    if both:
        return {"low": {"value": _number(both.group(1), ""), **unit},
                "high": {"value": _number(both.group(2), ""), **unit}, "text": text}
    bound = _BOUND.match(text)
    if bound:
        side = "high" if bound.group(1).startswith("<") else "low"
        return {side: {"value": _number(bound.group(2), ""), **unit}, "text": text}
    return {"text": text}
