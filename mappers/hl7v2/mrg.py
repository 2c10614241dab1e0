"""MRG (merge information) -> the identifiers of the patient an A40 merges away or an A47 renames. Pure.

MRG-1 is the prior patient identifier list (CX, like PID-3). The patient is found by its first PI
(the sender's own id), else its first identifier, as PID's are.
"""

from __future__ import annotations

from .datatypes import identifier
from .er7 import repetitions
from .problems import Problem


def prior(mrg, index: int, authority: str) -> tuple[list[dict], dict]:
    """(MRG-1's identifiers, the one the prior patient is found by)."""
    found = [i for i in (identifier(cx, authority) for cx in repetitions(mrg, 1)) if i]
    if not found:
        raise Problem(101, "MRG-1 (prior patient identifier list) carries no identifier", f"MRG^{index}^1")
    key = next((i for i in found if ((i.get("type") or {}).get("coding") or [{}])[0].get("code") == "PI"), found[0])
    return found, key


def same(first: dict, second: dict) -> bool:
    return (first.get("system"), first["value"]) == (second.get("system"), second["value"])


def without(identifiers: list[dict], removed: list[dict]) -> list[dict]:
    """``identifiers`` but those of ``removed`` (by system and value)."""
    return [i for i in identifiers if not any(same(i, r) for r in removed)]
