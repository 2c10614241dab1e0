"""Reading measures out of resources: their time, their patient, a coded value, unit conversion. Pure."""

from __future__ import annotations

from fhir_server.search.dates import DateFormatError, date_range
from fhir_server.search.units import canonical

from .model import OPERATORS, Limit

Code = tuple[str, str]  # (system, code)
_STOPPED = ("entered-in-error", "cancelled")


def moment(resource: dict) -> float | None:
    """When ``resource`` happened (epoch seconds): its effective, issued, sent or authored time, else when it
    was stored."""
    period = resource.get("effectivePeriod") or {}
    for value in (resource.get("effectiveDateTime"), resource.get("effectiveInstant"), period.get("start"),
                  period.get("end"), resource.get("issued"), resource.get("sent"), resource.get("authored"),
                  resource.get("occurrenceDateTime"), (resource.get("meta") or {}).get("lastUpdated")):
        if isinstance(value, str):
            try:
                return date_range(value)[0]
            except DateFormatError:
                continue
    return None


def patient_of(resource: dict) -> str | None:
    """The id of the Patient ``resource`` is about (its subject, or patient), if it is one."""
    for key in ("subject", "patient"):
        reference = (resource.get(key) or {}).get("reference")
        if isinstance(reference, str) and reference.startswith("Patient/"):
            rest = reference[len("Patient/"):]
            return rest.split("/", 1)[0] or None
    return None


def in_use(resource: dict) -> bool:
    """Not entered in error nor cancelled."""
    return resource.get("status") not in _STOPPED


def has_code(concept: dict | None, codes: tuple[Code, ...]) -> bool:
    """Whether a CodeableConcept carries one of ``codes`` (system and code)."""
    for coding in (concept or {}).get("coding") or ():
        if (coding.get("system"), coding.get("code")) in codes:
            return True
    return False


def quantity(resource: dict, component: tuple[Code, ...] | None = None) -> tuple[float, str] | None:
    """The (value, unit) of ``resource``'s valueQuantity, or of its first component carrying one of ``component``."""
    holder = resource
    if component is not None:
        holder = next((c for c in resource.get("component") or () if has_code(c.get("code"), component)), None)
        if holder is None:
            return None
    q = holder.get("valueQuantity")
    if not isinstance(q, dict) or isinstance(q.get("value"), bool) or not isinstance(q.get("value"), int | float):
        return None
    return float(q["value"]), str(q.get("code") or q.get("unit") or "")


def convert(value: float, unit: str, target: str) -> float | None:
    """``value`` (in ``unit``) expressed in ``target``; None when they do not convert (mg/dL and mmol/L)."""
    if unit == target:
        return value
    here, there = canonical(value, unit), canonical(0.0, target)
    one = canonical(1.0, target)
    if here is None or there is None or one is None or here[1] != there[1] or one[0] == there[0]:
        return None
    return (here[0] - there[0]) / (one[0] - there[0])


def compare(value: float, unit: str, limit: Limit) -> tuple[bool, str, float, str] | None:
    """Test ``value`` against ``limit`` in the first of its units ``unit`` converts to.

    Returns (holds, the limit's unit, the limit, the value in that unit rounded for display), or None
    when no unit of the limit fits the measure.
    """
    for limit_unit, limit_value in limit.values:
        converted = convert(value, unit, limit_unit)
        if converted is None:
            continue
        converted = float(f"{converted:.10g}")  # 70.00000000001 from a round trip must still be 70
        return OPERATORS[limit.op][1](converted, limit_value), limit_unit, limit_value, f"{converted:g}"
    return None
