"""JSON Schema pieces the feeds' schemas share (draft 2020-12): the patient, a time."""

from __future__ import annotations

from .patients import INS_PATTERN

DIALECT = "https://json-schema.org/draft/2020-12/schema"

PATIENT = {
    "description": "The patient: INS first, else the sender's own identifier (a system it registered), else the"
                   " Relais id. Several may be given: the first in that order decides.",
    "type": "object",
    "properties": {
        "ins": {"type": "string", "pattern": INS_PATTERN, "description": "INS (NIR or NIA), 15 characters"},
        "identifier": {"type": "object", "required": ["system", "value"], "additionalProperties": False,
                       "properties": {"system": {"type": "string", "minLength": 1},
                                      "value": {"type": "string", "minLength": 1}}},
        "id": {"type": "string", "pattern": r"^(Patient/)?[A-Za-z0-9\-.]{1,64}$"},
    },
    "additionalProperties": False,
    "anyOf": [{"required": ["ins"]}, {"required": ["identifier"]}, {"required": ["id"]}],
}

TIME = {"type": "string", "format": "date-time",
        "description": "ISO 8601 date-time with its offset, e.g. 2026-12-01T07:42:00+01:00"}
KEY = {"type": "string", "minLength": 1, "maxLength": 200,
       "description": "unique per sender: a payload sent again under the same id gets the same answer"}


def schema(feed: str, title: str, description: str, properties: dict, required: list[str], **more) -> dict:
    return {"$schema": DIALECT, "$id": f"https://relais.example/feeds/{feed}/schema", "title": title,
            "description": description, "type": "object", "properties": properties, "required": required,
            "additionalProperties": False, **more}
