"""ORC (common order) -> what orders share: placer and filler numbers, status, time, ordering provider. Pure."""

from __future__ import annotations

from .changes import Changes, created_once
from .context import Context, first_order_number
from .datatypes import date_time
from .er7 import field, repetitions
from .participants import practitioner

# ORC-5 order status (table 0038) and ORC-1 order control (table 0119) -> a request's status
# (ServiceRequest codes; MedicationRequest says cancelled and stopped for revoked)
_ORDER_STATUS = {"A": "active", "CA": "revoked", "CM": "completed", "DC": "revoked", "ER": "entered-in-error",
                 "HD": "on-hold", "IP": "active", "RP": "revoked", "SC": "active"}
_ORDER_CONTROL = {"NW": "active", "CA": "revoked", "OC": "revoked", "CR": "revoked", "DC": "revoked",
                  "OD": "revoked", "DR": "revoked", "HD": "on-hold", "OH": "on-hold", "RL": "active",
                  "XO": "active", "XR": "active", "OK": "active", "RE": "completed", "CN": "active"}
_MEDICATION = {"revoked": "cancelled"}
_DISCONTINUED = ("DC", "OD", "DR")


def status(orc, medication: bool = False) -> str:
    """The request status an ORC says: ORC-5 when given, else what ORC-1 does; ``unknown`` else."""
    found = _ORDER_STATUS.get(field(orc, 5).upper()) if orc is not None else None
    control = field(orc, 1).upper() if orc is not None else ""
    if found is None:
        found = _ORDER_CONTROL.get(control, "unknown") if orc is not None else "active"
    if medication:
        if found == "revoked" and (control in _DISCONTINUED or field(orc, 5).upper() == "DC"):
            return "stopped"
        return _MEDICATION.get(found, found)
    return found


def identifiers(ctx: Context, orc, obr=None) -> list[dict]:
    """The placer (ORC-2, else OBR-2) and filler (ORC-3, else OBR-3) order numbers."""
    found = []
    for number, kind in ((2, "PLAC"), (3, "FILL")):
        ident = first_order_number(orc, number, kind, ctx.authority) if orc is not None else None
        if ident is None and obr is not None:
            ident = first_order_number(obr, number, kind, ctx.authority)
        if ident is not None:
            found.append(ident)
    return found


def authored(orc) -> str | None:
    """ORC-9 (date/time of transaction)."""
    return date_time(field(orc, 9, 1)) if orc is not None else None


def requester(ctx: Context, orc, position: int, out: Changes) -> str | None:
    """ORC-12 (ordering provider) as a Practitioner reference (created once), or None."""
    reps = repetitions(orc, 12) if orc is not None else []
    made = practitioner(reps[0], ctx.authority) if reps else None
    return out.add(created_once("Practitioner", *made), f"ORC^{position}^12") if made else None
