"""The vendor JSON of ``POST /feeds/telemonitoring``, as served at ``GET /feeds/telemonitoring/schema``."""

from __future__ import annotations

from ..schemas import KEY, PATIENT, TIME, schema
from .measures import MEASURE_TYPES

_NUMBER = {"type": "number"}

MEASURE = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "minLength": 1, "maxLength": 200,
               "description": "unique per device: the same measure sent again is answered 'unchanged'"},
        "type": {"enum": list(MEASURE_TYPES)},
        "value": _NUMBER,
        "systolic": _NUMBER,
        "diastolic": _NUMBER,
        "pulse": _NUMBER,
        "unit": {"type": "string"},
        "time": TIME,
    },
    "required": ["id", "type", "time"],
    "additionalProperties": False,
    "allOf": [
        {"if": {"properties": {"type": {"const": "blood-pressure"}}},
         "then": {"required": ["systolic", "diastolic"]}},
        {"if": {"properties": {"type": {"enum": [t for t in MEASURE_TYPES if t not in ("blood-pressure", "fall")]}}},
         "then": {"required": ["value"]}},
    ],
}

SCHEMA = schema(
    "telemonitoring",
    "Relais telemonitoring measures",
    "Measures of one connected device for one patient. Each becomes a vital-signs Observation (LOINC, UCUM)"
    " linked to the Device; the answer is per measure: created, unchanged (sent before) or rejected with its"
    " reason (implausible values: see the README's bounds).",
    {
        "id": KEY,
        "patient": PATIENT,
        "device": {
            "type": "object",
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 200,
                       "description": "the device's serial number or the vendor's id for it"},
                "manufacturer": {"type": "string"},
                "model": {"type": "string"},
                "type": {"type": "string", "description": "e.g. blood-pressure-monitor, scale, glucometer"},
            },
            "required": ["id"],
            "additionalProperties": False,
        },
        "measures": {"type": "array", "items": MEASURE, "minItems": 1, "maxItems": 1000},
    },
    ["patient", "device", "measures"],
)
