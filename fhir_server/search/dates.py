"""FHIR partial dates as inclusive ranges of epoch seconds (UTC).

A value covers the whole span of its precision: ``2026`` is the year, ``2026-11`` the month,
``2026-11-05T10:00`` the minute. A dateTime without a timezone is taken as UTC.
"""

from __future__ import annotations

import calendar
import re

# Bounds for open Period ends: year 1 and the end of year 9999, as FHIR allows.
MIN_TS = float(calendar.timegm((1, 1, 1, 0, 0, 0)))
MAX_TS = float(calendar.timegm((9999, 12, 31, 0, 0, 0)) + 86400) - 0.001

# The smallest step the index distinguishes: FHIR instants rarely carry more than milliseconds.
EPSILON = 0.001

_DATE = re.compile(
    r"^(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(\.\d+)?)?"
    r"(Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


class DateFormatError(ValueError):
    """Not a FHIR date, dateTime or instant."""


def _timegm(year: int, month: int, day: int = 1, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    # calendar.timegm refuses year 10000, the exclusive end of year 9999's ranges.
    if year > 9999:
        return calendar.timegm((9999, 12, 31, 0, 0, 0)) + 86400
    return calendar.timegm((year, month, day, hour, minute, second))


def _month_end(year: int, month: int) -> int:
    return calendar.monthrange(year, month)[1] if 1 <= year <= 9999 else 31


def date_range(value: str) -> tuple[float, float]:
    """Inclusive [low, high] epoch seconds covered by a FHIR date/dateTime/instant at its precision."""
    m = _DATE.match(value.strip())
    if not m:
        raise DateFormatError(f"invalid date {value!r}")
    year_s, month_s, day_s, hour_s, minute_s, second_s, frac_s, tz = m.groups()
    year = int(year_s)
    if year < 1:
        raise DateFormatError(f"invalid year in {value!r}: FHIR years start at 0001")
    if month_s is None:
        return float(_timegm(*(year, 1, 1, 0, 0, 0))), float(_timegm(*(year + 1, 1, 1, 0, 0, 0))) - EPSILON
    month = int(month_s)
    if not 1 <= month <= 12:
        raise DateFormatError(f"invalid month in {value!r}")
    if day_s is None:
        nyear, nmonth = (year + 1, 1) if month == 12 else (year, month + 1)
        low = _timegm(*(year, month, 1, 0, 0, 0))
        return float(low), float(_timegm(*(nyear, nmonth, 1, 0, 0, 0))) - EPSILON
    day = int(day_s)
    if not 1 <= day <= _month_end(year, month):
        raise DateFormatError(f"invalid day in {value!r}")
    if hour_s is None:
        low = _timegm(*(year, month, day, 0, 0, 0))
        return float(low), float(low + 86400) - EPSILON
    hour, minute = int(hour_s), int(minute_s)
    if hour > 24 or minute > 59:
        raise DateFormatError(f"invalid time in {value!r}")
    offset = 0
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        offset = sign * (int(tz[1:3]) * 3600 + int(tz[4:6]) * 60)
    if second_s is None:
        low = _timegm(*(year, month, day, hour, minute, 0)) - offset
        return float(low), float(low + 60) - EPSILON
    second = int(second_s)
    if second > 60:
        raise DateFormatError(f"invalid seconds in {value!r}")
    low = _timegm(*(year, month, day, hour, minute, second)) - offset
    if frac_s:
        # Fractions finer than the index's step collapse to a point.
        frac = float(frac_s)
        digits = len(frac_s) - 1
        step = 10.0**-digits if digits < 3 else 0.0
        start = low + round(frac, 3)
        return start, start + max(step - EPSILON, 0.0)
    return float(low), float(low + 1) - EPSILON


def is_date(value: str) -> bool:
    """Whether ``value`` looks like a FHIR date/dateTime/instant."""
    return bool(_DATE.match(value.strip()))


def format_instant(ts: float) -> str:
    """An epoch second as a FHIR instant (UTC), for messages and sort keys."""
    import datetime as _dt  # noqa: PLC0415 - rarely used

    return _dt.datetime.fromtimestamp(ts, tz=_dt.UTC).isoformat().replace("+00:00", "Z")
