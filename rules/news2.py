"""NEWS2 (Royal College of Physicians, 2017): the score of each vital sign and the total, pure.

Scale 2 of SpO2 is for patients with hypercapnic respiratory failure whose clinician prescribed a target
of 88-92 %; scale 1 for everyone else. The level of consciousness is not measured at home: it is not
scored (counted 0), which can only lower the total. NEWS2 is validated for acutely ill adults in hospital;
at home it is decision support only.
"""

from __future__ import annotations

from dataclasses import dataclass

LOINC = "http://loinc.org"
RESPIRATION = "respiration"
SPO2 = "spo2"
SYSTOLIC = "systolic"
PULSE = "pulse"
TEMPERATURE = "temperature"
OXYGEN = "oxygen"  # supplemental oxygen: inhaled O2 flow (3151-8) above 0 or concentration (3150-0) above 21 %
# The LOINC codes each parameter is read from (as Observation.code, or as a component's code).
CODES = {
    RESPIRATION: ("9279-1",),
    SPO2: ("2708-6", "59408-5"),
    SYSTOLIC: ("8480-6",),
    PULSE: ("8867-4",),
    TEMPERATURE: ("8310-5",),
    OXYGEN: ("3151-8", "3150-0"),
}
BP_PANEL = "85354-9"  # carries systolic as a component
UNITS = {RESPIRATION: "/min", SPO2: "%", SYSTOLIC: "mm[Hg]", PULSE: "/min", TEMPERATURE: "Cel"}
LABELS = {
    RESPIRATION: "Fréquence respiratoire",
    SPO2: "SpO2",
    SYSTOLIC: "PA systolique",
    PULSE: "Fréquence cardiaque",
    TEMPERATURE: "Température",
    OXYGEN: "Oxygène",
}


def _band(value: float, bands: tuple[tuple[float, int], ...], above: int) -> int:
    """The score of the first band whose upper bound (inclusive) ``value`` does not exceed."""
    for upper, score in bands:
        if value <= upper:
            return score
    return above


def score_respiration(rate: float) -> int:
    return _band(rate, ((8, 3), (11, 1), (20, 0), (24, 2)), 3)


def score_spo2(spo2: float, scale: int = 1, on_oxygen: bool = False) -> int:
    if scale == 1:
        return _band(spo2, ((91, 3), (93, 2), (95, 1)), 0)
    if spo2 <= 87:
        return _band(spo2, ((83, 3), (85, 2)), 1)
    if spo2 <= 92 or not on_oxygen:
        return 0  # 88-92 %, and 93 % or more breathing air, are on target on scale 2
    return _band(spo2, ((94, 1), (96, 2)), 3)


def score_systolic(pressure: float) -> int:
    return _band(pressure, ((90, 3), (100, 2), (110, 1), (219, 0)), 3)


def score_pulse(rate: float) -> int:
    return _band(rate, ((40, 3), (50, 1), (90, 0), (110, 1), (130, 2)), 3)


def score_temperature(celsius: float) -> int:
    return _band(celsius, ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1)), 2)


@dataclass(frozen=True)
class News2Score:
    total: int
    scores: dict[str, int]  # parameter -> its score
    values: dict[str, float]  # parameter -> the value scored
    scale: int

    @property
    def highest_single(self) -> int:
        return max(self.scores.values(), default=0)


def news2(values: dict[str, float], scale: int = 1) -> News2Score:
    """The score of the parameters present in ``values`` (``oxygen``: 1 when on supplemental oxygen)."""
    on_oxygen = bool(values.get(OXYGEN))
    scores: dict[str, int] = {}
    if RESPIRATION in values:
        scores[RESPIRATION] = score_respiration(values[RESPIRATION])
    if SPO2 in values:
        scores[SPO2] = score_spo2(values[SPO2], scale, on_oxygen)
    if OXYGEN in values:
        scores[OXYGEN] = 2 if on_oxygen else 0
    if SYSTOLIC in values:
        scores[SYSTOLIC] = score_systolic(values[SYSTOLIC])
    if PULSE in values:
        scores[PULSE] = score_pulse(values[PULSE])
    if TEMPERATURE in values:
        scores[TEMPERATURE] = score_temperature(values[TEMPERATURE])
    return News2Score(sum(scores.values()), scores, dict(values), scale)
