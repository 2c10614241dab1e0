"""The HL7 v2 feed: a pure mapper (ER7 in, changes and ACK out), and its transports (HTTP, MLLP)."""

from __future__ import annotations

from .mapper import Mapped, map_message
from .problems import Problem

__all__ = ["Mapped", "Problem", "map_message"]
