"""ORM^O01 and OML^O21 (orders) -> one ServiceRequest per ORC (with the OBR that details it), found again by
its placer order number (else its filler's): a status change or a cancellation updates it. Pure."""

from __future__ import annotations

from . import orc as orc_segment
from .changes import Changes
from .context import Context
from .datatypes import codeable_concept, date_time
from .er7 import field, repetitions, value
from .problems import Problem

_PRIORITY = {"S": "stat", "A": "asap", "R": "routine", "P": "urgent", "C": "urgent", "T": "urgent"}


def changes(ctx: Context) -> Changes:
    """The ServiceRequests of an order message (its Patient and Encounter are the caller's)."""
    out = Changes()
    orders = _orders(ctx)
    if not orders:
        raise Problem(100, f"{ctx.head.message_type} without an ORC or OBR segment", "ORC", "AR")
    for position, orc, obr, notes in orders:
        out.extend(_request(ctx, position, orc, obr, notes))
    return out


def _orders(ctx: Context) -> list[tuple[int, object | None, object | None, list[str]]]:
    """(ORC position, ORC, its OBR, its NTE texts); an OBR without an ORC before it is an order of its own."""
    orders: list[list] = []
    orc_count = 0
    for segment in ctx.segments:
        if segment.name == "ORC":
            orc_count += 1
            orders.append([orc_count, segment, None, []])
        elif segment.name == "OBR":
            if orders and orders[-1][2] is None and orders[-1][1] is not None:
                orders[-1][2] = segment
            else:
                orders.append([orc_count, None, segment, []])
        elif segment.name == "NTE" and orders:
            text = "\n".join(value(rep) for rep in repetitions(segment, 3))
            if text:
                orders[-1][3].append(text)
    return [tuple(order) for order in orders]


def service_request(ctx: Context, orc, obr, requester: str | None, notes: list[str]) -> dict:
    """The ServiceRequest of an ORC and its OBR."""
    resource: dict = {"resourceType": "ServiceRequest"}
    identifiers = orc_segment.identifiers(ctx, orc, obr)
    if identifiers:
        resource["identifier"] = identifiers
    resource.update(status=orc_segment.status(orc), intent="order")
    code = codeable_concept(repetitions(obr, 4)[0]) if obr is not None and repetitions(obr, 4) else None
    if code:
        resource["code"] = code
    priority = _PRIORITY.get(_priority(orc, obr))
    if priority:
        resource["priority"] = priority
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    when = _occurrence(ctx, obr)
    if when:
        resource["occurrenceDateTime"] = when
    authored = orc_segment.authored(orc) or (date_time(field(obr, 6, 1)) if obr is not None else None)
    if authored:
        resource["authoredOn"] = authored
    if requester:
        resource["requester"] = {"reference": requester}
    reasons = [c for c in (codeable_concept(rep) for rep in repetitions(obr, 31)) if c] if obr is not None else []
    if reasons:
        resource["reasonCode"] = reasons
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def _priority(orc, obr) -> str:
    """OBR-5 (priority, before v2.7), else ORC-7.6 / OBR-27.6 (TQ priority), else TQ1-9."""
    if obr is not None and field(obr, 5):
        return field(obr, 5, 1).upper()
    for segment, number in ((orc, 7), (obr, 27)):
        if segment is not None and field(segment, number, 6):
            return field(segment, number, 6).upper()
    return ""


def _occurrence(ctx: Context, obr) -> str | None:
    """When the service is wanted: TQ1-7 (start), else OBR-27.4 (TQ start), else OBR-7 (observation time)."""
    for _, tq1 in ctx.named("TQ1")[:1]:
        if field(tq1, 7, 1):
            return date_time(field(tq1, 7, 1))
    if obr is not None:
        return date_time(field(obr, 27, 4)) or date_time(field(obr, 7, 1))
    return None


def _request(ctx: Context, position: int, orc, obr, notes: list[str]) -> Changes:
    out = Changes()
    where = f"ORC^{position}" if orc is not None else "OBR^1"
    requester = orc_segment.requester(ctx, orc, position, out)
    resource = service_request(ctx, orc, obr, requester, notes)
    keys = resource.get("identifier") or []
    out.add(ctx.keyed_or_created("ServiceRequest", resource, keys[0] if keys else None, where), where)
    return out
