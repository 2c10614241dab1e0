"""The care messages this feed maps beyond ADT, each by its own module: message code -> (triggers, mapper)."""

from __future__ import annotations

from collections.abc import Callable

from . import mdm, oru
from .changes import Changes
from .context import Context

MAPPERS: dict[str, tuple[tuple[str, ...], Callable[[Context], Changes]]] = {
    "ORU": (("R01",), oru.changes),
    "MDM": (("T02", "T04", "T10"), mdm.changes),
}
BILLING = ("BAR", "DFT")
