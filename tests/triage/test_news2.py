"""NEWS2: each parameter's bands at their edges, and the aggregate rule over recent vital signs."""

from __future__ import annotations

import pytest
from test_default_rules import fired
from triagekit import blood_pressure, goal, measure

from rules import news2


@pytest.mark.parametrize("score, cases", [
    (news2.score_respiration, [(8, 3), (9, 1), (11, 1), (12, 0), (20, 0), (21, 2), (24, 2), (25, 3)]),
    (news2.score_systolic, [(90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)]),
    (news2.score_pulse, [(40, 3), (41, 1), (50, 1), (51, 0), (90, 0), (91, 1), (110, 1), (111, 2), (130, 2),
                         (131, 3)]),
    (news2.score_temperature, [(35.0, 3), (35.1, 1), (36.0, 1), (36.1, 0), (38.0, 0), (38.1, 1), (39.0, 1),
                               (39.1, 2)]),
    (news2.score_spo2, [(91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0)]),
])
def test_bands(score, cases):
    assert [(value, score(value)) for value, _ in cases] == cases


@pytest.mark.parametrize("spo2, on_oxygen, expected", [
    (83, False, 3), (84, False, 2), (85, False, 2), (86, False, 1), (87, False, 1), (88, False, 0), (92, False, 0),
    (93, False, 0), (99, False, 0), (92, True, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2),
    (97, True, 3),
])
def test_scale_2(spo2, on_oxygen, expected):
    assert news2.score_spo2(spo2, scale=2, on_oxygen=on_oxygen) == expected


def test_total_counts_oxygen_as_two():
    score = news2.news2({news2.RESPIRATION: 22, news2.SPO2: 95, news2.OXYGEN: 1, news2.SYSTOLIC: 120,
                         news2.PULSE: 80, news2.TEMPERATURE: 37})
    assert score.total == 2 + 1 + 2 and score.highest_single == 2


AT = "2026-11-20T08:{:02d}:00Z"


def _vitals(rr=16, spo2=97, systolic=125, pulse=75, minutes=(0, 5, 10, 15)):
    return [measure("9279-1", rr, "/min", at=AT.format(minutes[0])),
            measure("2708-6", spo2, "%", at=AT.format(minutes[1])),
            blood_pressure(systolic, 80, at=AT.format(minutes[2])),
            measure("8867-4", pulse, "/min", at=AT.format(minutes[3]))]


def test_news2_fires_urgent_at_5_not_at_4(store):
    # rr 21 (2) + spo2 94 (1) + systolic 105 (1) = 4; then temperature 38.5 (1) makes 5
    assert "news2" not in fired(store, measure("8310-5", 37, "Cel", at=AT.format(20)), *_vitals(21, 94, 105))
    assert fired(store, measure("8310-5", 38.5, "Cel", at=AT.format(21)))["news2"] == "urgent"


def test_news2_fires_urgent_on_a_single_parameter_at_3(store):
    assert fired(store, measure("8310-5", 37, "Cel", at=AT.format(20)), *_vitals(rr=26))["news2"] == "urgent"


def test_news2_fires_stat_at_7(store):
    # rr 25 (3) + spo2 93 (2) + pulse 115 (2) = 7
    assert fired(store, measure("8310-5", 37, "Cel", at=AT.format(20)), *_vitals(25, 93, 125, 115))["news2"] == "stat"


def test_news2_needs_enough_recent_parameters(store):
    # three parameters only: the rule does not score
    history = _vitals(25, 93, 125, 115)[:2]
    assert "news2" not in fired(store, measure("8867-4", 115, "/min", at=AT.format(20)), *history)


def test_a_vital_sign_older_than_the_window_is_not_scored(store):
    history = _vitals(25, 93, 125, 115, minutes=(0, 5, 10, 15))
    history[0]["effectiveDateTime"] = "2026-11-20T07:19:59Z"  # 1 h 0 min 1 s before the trigger
    assert "news2" not in fired(store, measure("8310-5", 37, "Cel", at="2026-11-20T08:20:00Z"), *history)


def test_scale_2_for_a_patient_whose_clinician_prescribed_88_to_92(store):
    # spo2 88 on air: scale 1 scores 3 (urgent), scale 2 scores 0
    assert fired(store, measure("8310-5", 37, "Cel", at=AT.format(20)), *_vitals(spo2=88))["news2"] == "urgent"
    history = [goal("p2", "2708-6", low=88, high=92), *[{**r, "subject": {"reference": "Patient/p2"}}
                                                       for r in _vitals(spo2=88)]]
    assert "news2" not in fired(store, measure("8310-5", 37, "Cel", patient="p2", at=AT.format(20)), *history)
