"""Teleconsultation: the report of ``POST /feeds/teleconsultation`` -> Encounter (VR), Conditions,
MedicationRequests and a DocumentReference, with the Practitioner found or created by RPPS. Pure mapper."""

from .mapper import feed_mapper, map_payload
from .schema import SCHEMA

__all__ = ["SCHEMA", "feed_mapper", "map_payload"]
