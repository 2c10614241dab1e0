"""The outbox: events a write leaves behind, and the per-application handlers that drain them."""

from .dead_letters import DEAD_LETTERS
from .dispatcher import (
    BATCH,
    EXTENSION,
    MAX_ATTEMPTS,
    DeadLetterHandler,
    Handler,
    Outbox,
    outbox_of,
    payloads_of,
)

__all__ = ["BATCH", "DEAD_LETTERS", "EXTENSION", "MAX_ATTEMPTS", "DeadLetterHandler", "Handler", "Outbox",
           "outbox_of", "payloads_of"]
