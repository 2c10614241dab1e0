"""One vendor measure -> its vital-signs Observations (LOINC, UCUM, the ANS "Mesures de santé" profiles), with
units converted to the profiles' own and the original value kept; or why the measure is implausible. Pure.

The bounds below are the README's table: a value outside them is refused for that measure only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
MESURES = "https://interop.esante.gouv.fr/ig/fhir/mesures"
ORIGINAL_VALUE = f"{MESURES}/StructureDefinition/mesures-original-value"
FUTURE_TOLERANCE = timedelta(minutes=10)  # device clocks drift; more than this ahead is a wrong clock

MEASURE_TYPES = ("blood-pressure", "weight", "heart-rate", "spo2", "temperature", "glucose", "steps",
                 "respiratory-rate", "fall")


class Implausible(Exception):
    """Why one measure is refused (the rest of the payload is stored)."""


@dataclass(frozen=True)
class Unit:
    """A unit a vendor may send, and how to reach the profile's unit from it."""

    ucum: str  # its UCUM code, kept in the original value
    factor: float = 1.0
    offset: float = 0.0  # value * factor + offset

    def convert(self, value: float) -> float:
        return value * self.factor + self.offset


@dataclass(frozen=True)
class Kind:
    """One measure type: its LOINC coding(s), profile, UCUM unit, the units accepted and the plausible range."""

    codings: tuple[tuple[str, str], ...]  # (code, display)
    profile: str | None
    unit: str  # UCUM code stored
    unit_label: str
    units: dict[str, Unit]  # what a vendor may write -> how to convert
    low: float
    high: float
    decimals: int
    default_unit: str | None = None  # when the vendor sends none; None: the unit is required


_MMHG = {"mmHg": Unit("mm[Hg]"), "mm[Hg]": Unit("mm[Hg]"), "kPa": Unit("kPa", 7.500615758)}
_BEATS = {u: Unit("/min") for u in ("/min", "bpm", "beats/min", "{beats}/min")}
_BREATHS = {u: Unit("/min") for u in ("/min", "breaths/min", "{breaths}/min")}

KINDS: dict[str, Kind] = {
    "weight": Kind(((("29463-7", "Body weight"),)), "mesures-fr-observation-body-weight", "kg", "kg",
                   {"kg": Unit("kg"), "g": Unit("g", 0.001), "lb": Unit("[lb_av]", 0.45359237),
                    "[lb_av]": Unit("[lb_av]", 0.45359237)}, 0.5, 400, 2),
    "heart-rate": Kind((("8867-4", "Heart rate"),), "mesures-fr-observation-heartrate", "/min", "/min", _BEATS,
                       20, 250, 0, "/min"),
    "respiratory-rate": Kind((("9279-1", "Respiratory rate"),), None, "/min", "/min", _BREATHS, 4, 80, 0, "/min"),
    "spo2": Kind((("2708-6", "Oxygen saturation in Arterial blood"),
                  ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")),
                 "mesures-fr-observation-oxygen-sat", "%", "%", {"%": Unit("%")}, 50, 100, 1, "%"),
    "temperature": Kind((("8310-5", "Body temperature"),), "mesures-fr-observation-body-temperature", "Cel", "°C",
                        {"Cel": Unit("Cel"), "°C": Unit("Cel"), "C": Unit("Cel"),
                         "[degF]": Unit("[degF]", 5 / 9, -32 * 5 / 9), "°F": Unit("[degF]", 5 / 9, -32 * 5 / 9),
                         "F": Unit("[degF]", 5 / 9, -32 * 5 / 9)}, 30, 45, 1),
    "glucose": Kind((("2339-0", "Glucose [Mass/volume] in Blood"),), "mesures-observation-glucose", "mg/dL",
                    "mg/dL", {"mg/dL": Unit("mg/dL"), "mmol/L": Unit("mmol/L", 18.016), "g/L": Unit("g/L", 100)},
                    10, 1000, 1),
    "steps": Kind((("41950-7", "Number of steps in 24 hour Measured"),), "mesures-observation-steps-by-day", "/d",
                  "pas/jour", {u: Unit("/d") for u in ("steps", "/d", "{steps}/d", "steps/day")}, 0, 100_000, 0,
                  "/d"),
}
BLOOD_PRESSURE = (("85354-9", "Blood pressure panel with all children optional"),
                  ("8480-6", "Systolic blood pressure"), ("8462-4", "Diastolic blood pressure"))
BP_PROFILE = "mesures-fr-observation-bp"
SYSTOLIC = (40.0, 300.0)
DIASTOLIC = (20.0, 200.0)
FALL = (SNOMED, "1912002", "Fall")


def bounds_table() -> list[tuple[str, str, str]]:
    """(measure type, plausible range, units accepted): the README's table, from the same data."""
    rows = [("blood-pressure", f"systolic {SYSTOLIC[0]:g}-{SYSTOLIC[1]:g}, diastolic {DIASTOLIC[0]:g}-"
             f"{DIASTOLIC[1]:g} mmHg, systolic above diastolic; pulse as heart-rate", ", ".join(_MMHG))]
    for name, kind in KINDS.items():
        rows.append((name, f"{kind.low:g}-{kind.high:g} {kind.unit_label}", ", ".join(kind.units)))
    rows.append(("fall", "no value", "-"))
    return rows


def observations(measure: dict, received: datetime) -> list[tuple[str, dict]]:
    """The Observations of ``measure`` as (suffix, resource without subject/device/identifier/id); raise
    Implausible. The suffix tells a measure's second Observation apart (a blood pressure's pulse)."""
    kind = measure["type"]
    moment = _time(measure.get("time"), received)
    if kind == "blood-pressure":
        return _blood_pressure(measure, moment, received)
    if kind == "fall":
        return [("", _observation([FALL], None, moment, "activity") | {"valueBoolean": True})]
    return [("", _quantity(kind, KINDS[kind], measure.get("value"), measure.get("unit"), moment))]


def _time(text: object, received: datetime) -> str:
    if not isinstance(text, str):
        raise Implausible("time: missing")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Implausible(f"time: {text!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise Implausible(f"time: {text!r} has no time zone offset")
    if moment - received > FUTURE_TOLERANCE:
        raise Implausible(f"time: {text} is more than {FUTURE_TOLERANCE.seconds // 60} minutes in the future")
    return text


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Implausible(f"{what}: a number is required")
    try:
        return float(value)
    except OverflowError:  # an integer of 400 digits
        raise Implausible(f"{what}: {str(value)[:20]}... is outside any plausible range") from None


def _in_range(value: float, low: float, high: float, what: str, unit: str) -> None:
    if not low <= value <= high:
        raise Implausible(f"{what}: {value:g} {unit} is outside the plausible range {low:g}-{high:g} {unit}")


def _unit(kind_name: str, kind: Kind, unit: object) -> Unit:
    if unit is None and kind.default_unit is not None:
        return kind.units[kind.default_unit]
    if not isinstance(unit, str) or unit not in kind.units:
        raise Implausible(f"unit: {unit!r} is not a unit of {kind_name} (one of {', '.join(kind.units)})")
    return kind.units[unit]


def _rounded(value: float, decimals: int) -> int | float:
    rounded = round(value, decimals)
    return int(rounded) if decimals == 0 else rounded


def _quantity(name: str, kind: Kind, raw: object, unit_text: object, moment: str) -> dict:
    value = _number(raw, "value")
    unit = _unit(name, kind, unit_text)
    converted = _rounded(unit.convert(value), kind.decimals)
    _in_range(float(converted), kind.low, kind.high, "value", kind.unit_label)
    resource = _observation([(LOINC, c, d) for c, d in kind.codings], kind.profile, moment, "vital-signs")
    resource["valueQuantity"] = _ucum(converted, kind.unit_label, kind.unit)
    if unit.ucum != kind.unit:
        resource["extension"] = [original_value(value, str(unit_text), unit.ucum, kind.codings[0])]
    return resource


def _blood_pressure(measure: dict, moment: str, received: datetime) -> list[tuple[str, dict]]:
    unit = _unit("blood-pressure", Kind((), None, "mm[Hg]", "mmHg", _MMHG, 0, 0, 0, "mmHg"), measure.get("unit"))
    values = {}
    for part, (low, high) in (("systolic", SYSTOLIC), ("diastolic", DIASTOLIC)):
        raw = _number(measure.get(part), part)
        values[part] = (raw, _rounded(unit.convert(raw), 0))
        _in_range(float(values[part][1]), low, high, part, "mmHg")
    if values["systolic"][1] <= values["diastolic"][1]:
        raise Implausible(f"systolic {values['systolic'][1]} mmHg is not above diastolic {values['diastolic'][1]}"
                          " mmHg")
    panel = _observation([(LOINC, *BLOOD_PRESSURE[0])], BP_PROFILE, moment, "vital-signs")
    panel["component"] = []
    for (raw, converted), (code, display) in zip(values.values(), BLOOD_PRESSURE[1:], strict=True):
        component = {"code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                     "valueQuantity": _ucum(converted, "mmHg", "mm[Hg]")}
        if unit.ucum != "mm[Hg]":
            component["extension"] = [original_value(raw, str(measure.get("unit")), unit.ucum, (code, display))]
        panel["component"].append(component)
    found = [("", panel)]
    if measure.get("pulse") is not None:
        try:
            found.append(("pulse", _quantity("heart-rate", KINDS["heart-rate"], measure["pulse"], None, moment)))
        except Implausible as exc:
            raise Implausible(f"pulse: {exc}") from None
    return found


def _observation(codings: list[tuple[str, str, str]], profile: str | None, moment: str, category: str) -> dict:
    resource: dict = {"resourceType": "Observation"}
    if profile:
        resource["meta"] = {"profile": [f"{MESURES}/StructureDefinition/{profile}"]}
    resource.update({
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": category}]}],
        "code": {"coding": [{"system": s, "code": c, "display": d} for s, c, d in codings]},
        "effectiveDateTime": moment,
    })
    return resource


def _ucum(value: int | float, unit: str, code: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def original_value(value: float, unit: str, ucum: str, coding: tuple[str, str]) -> dict:
    """The ANS ``mesures-original-value`` extension: the value as the device measured it, before conversion.

    The guide types ``original-value`` as a CodeableConcept; a measured value is a number with a unit, so it is
    kept here as a valueQuantity (UCUM), which stays comparable and searchable.
    """
    return {"url": ORIGINAL_VALUE, "extension": [
        {"url": "has-been-converted", "valueBoolean": True},
        {"url": "original-code", "valueCodeableConcept": {"coding": [{"system": LOINC, "code": coding[0],
                                                                      "display": coding[1]}]}},
        {"url": "original-value", "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum}},
    ]}
