"""What pharmacy segments share (RXE, RXD, RXR): quantities with their units, the route. Pure."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from .datatypes import CODING_SYSTEMS, codeable_concept, coding_system
from .er7 import field, repetitions, value

UCUM = CODING_SYSTEMS["UCUM"]


def quantity(amount: str, units) -> dict | None:
    """An amount (NM) and its units (CE) as a Quantity; None when the amount is not a number."""
    try:
        number = Decimal(amount.strip())
    except (InvalidOperation, AttributeError):
        return None
    if not number.is_finite():
        return None
    found: dict = {"value": int(number) if number == number.to_integral_value() and "." not in amount
                   else float(number)}
    if units is not None and (value(units, 1) or value(units, 2)):
        found["unit"] = value(units, 2) or value(units, 1)
        if value(units, 1) and coding_system(value(units, 3)) == UCUM:
            found.update(system=UCUM, code=value(units, 1))
    return found


def first(segment, number: int):
    """The first repetition of field ``number`` (None without one)."""
    reps = repetitions(segment, number) if segment is not None else []
    return reps[0] if reps else None


def concept(segment, number: int) -> dict | None:
    """Field ``number`` (CE/CWE) as a CodeableConcept."""
    rep = first(segment, number)
    return codeable_concept(rep) if rep is not None else None


def route(rxr) -> dict | None:
    """RXR-1 (route)."""
    return concept(rxr, 1)


def amount(segment, number: int, units: int) -> dict | None:
    """Field ``number`` (an amount) with field ``units`` (its units) as a Quantity."""
    return quantity(field(segment, number), first(segment, units)) if field(segment, number) else None
