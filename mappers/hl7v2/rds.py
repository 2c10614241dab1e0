"""RDS^O13 (pharmacy dispense) -> one MedicationDispense per RXD (with its ORC and RXR), found again by the
dispense's filler order number (else its prescription number and time); the prescription it fills is named
by its placer order number (a logical reference: it may live elsewhere). Pure."""

from __future__ import annotations

from urllib.parse import quote

from . import orc as orc_segment
from . import rx
from .changes import Changes, created_once
from .context import Context
from .datatypes import LOCAL_SYSTEM, date_time
from .er7 import field, repetitions, value
from .participants import practitioner
from .problems import Problem

_STATUS = {"completed": "completed", "revoked": "cancelled", "on-hold": "on-hold",
           "entered-in-error": "entered-in-error", "active": "completed"}


def changes(ctx: Context) -> Changes:
    """The MedicationDispenses of an RDS^O13 (its Patient and Encounter are the caller's)."""
    out = Changes()
    orc = None
    dispenses: list[list] = []
    for segment in ctx.segments:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "RXD":
            dispenses.append([orc, segment, None])
        elif segment.name == "RXR" and dispenses and dispenses[-1][2] is None:
            dispenses[-1][2] = segment
    if not dispenses:
        raise Problem(100, "RDS^O13 without an RXD segment", "RXD", "AR")
    for position, (orc, rxd, rxr) in enumerate(dispenses, 1):
        out.extend(_dispense(ctx, position, orc, rxd, rxr))
    return out


def _dispense(ctx: Context, position: int, orc, rxd, rxr) -> Changes:
    out = Changes()
    where = f"RXD^{position}"
    medication = rx.concept(rxd, 2)
    if medication is None:
        raise Problem(101, "RXD-2 (dispense/give code) is empty", f"{where}^2", "AE")
    numbers = {i["type"]["coding"][0]["code"]: i for i in orc_segment.identifiers(ctx, orc)}
    handed = date_time(field(rxd, 3, 1))
    key = numbers.get("FILL")
    prescription = field(rxd, 7)
    if key is None and prescription and handed:
        key = {"system": f"{LOCAL_SYSTEM}prescription:{quote(ctx.authority, safe='-._~')}",
               "value": f"{prescription}/{handed}"}
    resource: dict = {"resourceType": "MedicationDispense"}
    if key:
        resource["identifier"] = [key]
    status = orc_segment.status(orc) if orc is not None else "completed"
    resource.update(status=_STATUS.get(status, "completed"), medicationCodeableConcept=medication,
                    subject={"reference": ctx.patient})
    if ctx.encounter:
        resource["context"] = {"reference": ctx.encounter}
    for xcn in repetitions(rxd, 10)[:1]:
        made = practitioner(xcn, ctx.authority)
        if made is not None:
            resource["performer"] = [{"actor": {"reference": out.add(created_once("Practitioner", *made),
                                                                     f"{where}^10")}}]
    if "PLAC" in numbers:
        resource["authorizingPrescription"] = [{"type": "MedicationRequest", "identifier": numbers["PLAC"]}]
    amount = rx.amount(rxd, 4, 5)
    if amount:
        resource["quantity"] = amount
    if handed:
        resource["whenHandedOver"] = handed
    route = rx.route(rxr)
    if route:
        resource["dosageInstruction"] = [{"route": route}]
    notes = [value(rep, 2) or value(rep, 1) for rep in repetitions(rxd, 9) if value(rep, 1) or value(rep, 2)]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    out.add(ctx.keyed_or_created("MedicationDispense", resource, key, where), where)
    return out
