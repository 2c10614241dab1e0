"""RDE^O11 (pharmacy encoded order) -> one MedicationRequest per ORC with its RXE (and RXR), found again
by its placer order number (else its filler's): a change or a discontinuation updates it. Pure."""

from __future__ import annotations

from . import orc as orc_segment
from . import rx
from .changes import Changes
from .context import Context
from .datatypes import date_time
from .er7 import field, repetitions, value
from .problems import Problem


def changes(ctx: Context) -> Changes:
    """The MedicationRequests of an RDE^O11 (its Patient and Encounter are the caller's)."""
    out = Changes()
    orders: list[list] = []
    orc_count = 0
    for segment in ctx.segments:
        if segment.name == "ORC":
            orc_count += 1
            orders.append([orc_count, segment, None, None, None])
        elif segment.name in ("RXE", "RXR", "TQ1") and orders:
            slot = {"RXE": 2, "RXR": 3, "TQ1": 4}[segment.name]
            if orders[-1][slot] is None:
                orders[-1][slot] = segment
    if not any(order[2] is not None for order in orders):
        raise Problem(100, "RDE^O11 without an ORC followed by an RXE", "RXE", "AR")
    for position, orc, rxe, rxr, tq1 in orders:
        if rxe is not None:
            out.extend(_request(ctx, position, orc, rxe, rxr, tq1))
    return out


def _request(ctx: Context, position: int, orc, rxe, rxr, tq1) -> Changes:
    out = Changes()
    where = f"ORC^{position}"
    medication = rx.concept(rxe, 2)
    if medication is None:
        raise Problem(101, "RXE-2 (give code) is empty", "RXE^1^2", "AE")
    resource: dict = {"resourceType": "MedicationRequest"}
    identifiers = orc_segment.identifiers(ctx, orc)
    if identifiers:
        resource["identifier"] = identifiers
    resource.update(status=orc_segment.status(orc, medication=True), intent="order",
                    medicationCodeableConcept=medication, subject={"reference": ctx.patient})
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    authored = orc_segment.authored(orc)
    if authored:
        resource["authoredOn"] = authored
    requester = orc_segment.requester(ctx, orc, position, out)
    if requester:
        resource["requester"] = {"reference": requester}
    dosage: dict = {}
    text = "; ".join(value(rep, 2) or value(rep, 1) for rep in repetitions(rxe, 7) if value(rep, 1) or value(rep, 2))
    if text:
        dosage["text"] = text
    route = rx.route(rxr)
    if route:
        dosage["route"] = route
    dose = rx.amount(rxe, 3, 5)
    if dose:
        dosage["doseAndRate"] = [{"doseQuantity": dose}]
    if dosage:
        resource["dosageInstruction"] = [dosage]
    dispense: dict = {}
    period = {k: v for k, v in (("start", date_time(field(tq1, 7, 1)) if tq1 is not None else None),
                                ("end", date_time(field(tq1, 8, 1)) if tq1 is not None else None)) if v}
    if period:
        dispense["validityPeriod"] = period
    refills = field(rxe, 12)
    if refills.isdigit():
        dispense["numberOfRepeatsAllowed"] = int(refills)
    amount = rx.amount(rxe, 10, 11)
    if amount:
        dispense["quantity"] = amount
    if dispense:
        resource["dispenseRequest"] = dispense
    out.add(ctx.keyed_or_created("MedicationRequest", resource, identifiers[0] if identifiers else None, where), where)
    return out
