"""Complaints from the field: ``POST /feeds/report`` -> a Communication (or a QuestionnaireResponse for a tablet
questionnaire) about the patient, ready for triage. Pure mapper."""

from .mapper import feed_mapper, map_payload
from .schema import SCHEMA

__all__ = ["SCHEMA", "feed_mapper", "map_payload"]
