"""Telemonitoring: the vendor JSON of ``POST /feeds/telemonitoring`` -> a Device and vital-signs Observations,
answered per measure. The pure mapper is ``mapper.py``; the measures' coding and bounds ``measures.py``."""

from .mapper import feed_mapper, map_payload
from .schema import SCHEMA

__all__ = ["SCHEMA", "feed_mapper", "map_payload"]
