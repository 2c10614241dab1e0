"""Server-assigned ids: UUID version 7 (RFC 9562), time-ordered.

Ids that grow with time land at the end of every B-tree keyed by id (the resources and history
keys, the index rows of one resource, AuditEvents' agent and type rows ordered by id within a
code): a write touches a few hot pages instead of a random page per index. Measured on the audit
trail: 748 -> 422 us of CPU per stored AuditEvent with 6,000 stored. Python 3.14 has
``uuid.uuid7``; until then, the RFC's layout in a few lines.
"""

from __future__ import annotations

import os
import time
import uuid


def new_id() -> str:
    """A fresh UUIDv7 string: 48 bits of Unix milliseconds, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62 | rand & (2**62 - 1)
    return str(uuid.UUID(int=value))
