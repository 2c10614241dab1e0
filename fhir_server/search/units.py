"""UCUM quantities in canonical form, so ``value-quantity=72|http://unitsofmeasure.org|g`` finds 0.072 kg.

Unit parsing and conversion come from ucumvert (UCUM grammar) over pint; each unit code is
converted once and cached as an affine map to SI base units (``base = a * value + b``; b is
non-zero only for Cel and [degF]). Extraction stores a second row per UCUM quantity, kind
``ucum`` with system ``CANONICAL``; the parser turns a UCUM search value into the same form.
"""

from __future__ import annotations

import threading
from functools import lru_cache

UCUM = "http://unitsofmeasure.org"
CANONICAL = "urn:relais:ucum-canonical"

_lock = threading.Lock()
_registry = None
_unavailable = False


def _ureg():
    global _registry, _unavailable
    if _registry is None and not _unavailable:
        with _lock:
            if _registry is None and not _unavailable:
                try:
                    from ucumvert import PintUcumRegistry  # noqa: PLC0415 - about a second to build, once

                    _registry = PintUcumRegistry()
                except ImportError:
                    _unavailable = True
    return _registry


def _clean(x: float) -> float:
    # pint's float arithmetic leaves 0.009999999999999998 for mg/dL; 12 digits are plenty for search.
    return float(f"{x:.12g}")


@lru_cache(maxsize=4096)
def affine(code: str) -> tuple[float, float, str] | None:
    """(a, b, canonical unit) with base value = a * value + b, or None if ``code`` is not convertible UCUM."""
    ureg = _ureg()
    if ureg is None or not code:
        return None
    try:
        q = ureg.from_ucum(code)
        if not hasattr(q, "to_base_units"):
            return None  # an annotation alone ({score}) has no dimension
        unit, mag = q.units, float(q.magnitude)
        zero = ureg.Quantity(0.0, unit).to_base_units()
        one = ureg.Quantity(mag, unit).to_base_units()
        a = float(one.magnitude) - float(zero.magnitude)
        b = float(zero.magnitude)
        return _clean(a), _clean(b), str(one.units)
    except Exception:  # noqa: BLE001 - any unit the grammar or pint refuses is simply not canonicalised
        return None


def canonical(value: float, code: str) -> tuple[float, str] | None:
    """``value`` of unit ``code`` in SI base units, and the canonical unit; None if not convertible."""
    got = affine(code)
    if got is None:
        return None
    a, b, unit = got
    return _clean(a * value + b), unit
