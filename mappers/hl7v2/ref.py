"""REF^I12 (patient referral) -> a ServiceRequest: RF1 gives its status, priority, type, reason and the
referral's identifier (found again by it); PRD its referring (requester) and referred-to (performer)
providers. Pure."""

from __future__ import annotations

from fhir_server import write

from .changes import Changes, conditional, created_once
from .context import Context, order_number
from .datatypes import codeable_concept, date_time, local_system
from .er7 import field, repetitions, value
from .participants import PERSON_SYSTEMS

SNOMED = "http://snomed.info/sct"
REFERRAL = {"coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}]}
# RF1-1 referral status (table 0283) and RF1-2 priority (table 0280)
_STATUS = {"A": "active", "P": "active", "R": "revoked", "E": "completed"}
_PRIORITY = {"S": "stat", "A": "asap", "R": "routine"}
_REFERRING = ("RP", "PP", "CP")  # referring, primary care, consulting provider
_REFERRED_TO = ("RT",)


def changes(ctx: Context) -> Changes:
    """The ServiceRequest of a referral (its Patient and Encounter are the caller's)."""
    _, rf1 = ctx.required("RF1")[0]
    out = Changes()
    resource: dict = {"resourceType": "ServiceRequest"}
    reps = repetitions(rf1, 6) or repetitions(rf1, 11)
    key = order_number(reps[0], "", ctx.authority) if reps else None
    if key:
        resource["identifier"] = [key]
    resource.update(status=_STATUS.get(field(rf1, 1, 1).upper(), "active"), intent="order",
                    category=[REFERRAL])
    kind = codeable_concept(repetitions(rf1, 3)[0]) if repetitions(rf1, 3) else None
    if kind:
        resource["code"] = kind
    priority = _PRIORITY.get(field(rf1, 2, 1).upper())
    if priority:
        resource["priority"] = priority
    resource["subject"] = {"reference": ctx.patient}
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    authored = date_time(field(rf1, 7, 1)) or date_time(field(rf1, 9, 1))
    if authored:
        resource["authoredOn"] = authored
    reasons = [c for c in (codeable_concept(rep) for rep in repetitions(rf1, 10)) if c]
    if reasons:
        resource["reasonCode"] = reasons
    for position, prd in ctx.named("PRD"):
        role = field(prd, 1, 1).upper()
        made = _provider(prd, ctx.authority)
        if made is None or role not in _REFERRING + _REFERRED_TO:
            continue
        ref = out.add(created_once("Practitioner", *made), f"PRD^{position}")
        if role in _REFERRED_TO:
            resource.setdefault("performer", []).append({"reference": ref})
        elif "requester" not in resource:
            resource["requester"] = {"reference": ref}
    if key:
        out.add(conditional("ServiceRequest", resource, key), "RF1^1")
    else:
        resource["id"] = ctx.created_id("ServiceRequest", "RF1^1")
        out.add(write.Change(write.CREATE, "ServiceRequest", id=resource["id"], resource=resource), "RF1^1")
    return out


def _provider(prd, authority: str) -> tuple[dict, dict] | None:
    """PRD-7 (identifiers: id^type, RPPS/IDNPS named by type) and PRD-2 (name, XPN) as a Practitioner."""
    ids = repetitions(prd, 7)
    number = value(ids[0], 1) if ids else ""
    if not number:
        return None
    system = PERSON_SYSTEMS.get(value(ids[0], 2).upper()) or local_system(authority)
    key = {"system": system, "value": number}
    resource: dict = {"resourceType": "Practitioner", "identifier": [key]}
    names = repetitions(prd, 2)
    if names and value(names[0], 1, 1):
        name: dict = {"family": value(names[0], 1, 1)}
        given = [g for g in (value(names[0], 2), value(names[0], 3)) if g]
        if given:
            name["given"] = given
        resource["name"] = [name]
    return resource, key
