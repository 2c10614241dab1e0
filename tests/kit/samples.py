"""Small valid resources for tests."""

from __future__ import annotations


def observation(value: float = 72.0, patient: str = "Patient/p1", code: str = "29463-7") -> dict:
    """A small valid Observation (body weight by default)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": patient},
        "effectiveDateTime": "2026-11-20T08:00:00Z",
        "valueQuantity": {"value": value, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"},
    }
