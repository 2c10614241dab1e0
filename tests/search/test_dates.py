"""FHIR partial dates as inclusive epoch ranges."""

from __future__ import annotations

import calendar

import pytest

from fhir_server.search.dates import MAX_TS, MIN_TS, DateFormatError, date_range


def ts(*parts: int) -> float:
    return float(calendar.timegm((*parts, *([0] * (6 - len(parts))))))


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2026", ts(2026, 1, 1), ts(2027, 1, 1) - 0.001),
        ("2026-11", ts(2026, 11, 1), ts(2026, 12, 1) - 0.001),
        ("2026-12", ts(2026, 12, 1), ts(2027, 1, 1) - 0.001),
        ("2024-02", ts(2024, 2, 1), ts(2024, 3, 1) - 0.001),
        ("2026-11-05", ts(2026, 11, 5), ts(2026, 11, 6) - 0.001),
        ("2026-11-05T10:00", ts(2026, 11, 5, 10), ts(2026, 11, 5, 10, 1) - 0.001),
        ("2026-11-05T10:00:07Z", ts(2026, 11, 5, 10, 0, 7), ts(2026, 11, 5, 10, 0, 8) - 0.001),
        ("2026-11-05T10:00:07+02:00", ts(2026, 11, 5, 8, 0, 7), ts(2026, 11, 5, 8, 0, 8) - 0.001),
        ("2026-11-05T10:00:07-05:30", ts(2026, 11, 5, 15, 30, 7), ts(2026, 11, 5, 15, 30, 8) - 0.001),
        ("2026-11-05T10:00:07.250Z", ts(2026, 11, 5, 10, 0, 7) + 0.25, ts(2026, 11, 5, 10, 0, 7) + 0.25),
        ("2026-11-05T10:00:07.5Z", ts(2026, 11, 5, 10, 0, 7) + 0.5, ts(2026, 11, 5, 10, 0, 7) + 0.599),
    ],
)
def test_ranges_follow_precision(value: str, low: float, high: float) -> None:
    got = date_range(value)
    assert got[0] == pytest.approx(low, abs=1e-6)
    assert got[1] == pytest.approx(high, abs=1e-6)


def test_no_timezone_means_utc() -> None:
    assert date_range("2026-11-05T10:00:00") == date_range("2026-11-05T10:00:00Z")


def test_year_9999_ends_at_max() -> None:
    assert date_range("9999")[1] == MAX_TS
    assert date_range("0001")[0] == MIN_TS


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-02-30", "26-01-01", "2026/01/01", "2026-01-01T25:00", "yesterday", ""]
)
def test_invalid_dates_raise(bad: str) -> None:
    with pytest.raises(DateFormatError):
        date_range(bad)
