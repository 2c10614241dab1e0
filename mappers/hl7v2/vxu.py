"""VXU^V04 (vaccination record) -> one Immunization per RXA (with its ORC and RXR), found again by the
order's filler number (else its placer's): an update or a deletion (RXA-21 D) changes it. Pure."""

from __future__ import annotations

from . import orc as orc_segment
from .changes import Changes, created_once
from .context import Context
from .datatypes import CODING_SYSTEMS, codeable_concept, coding_system, date_only, date_time
from .er7 import field, repetitions, value
from .participants import practitioner
from .problems import Problem

CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = CODING_SYSTEMS["UCUM"]
PERFORMER_FUNCTION = "http://terminology.hl7.org/CodeSystem/v2-0443"
# RXA-20 completion status (table 0322)
_STATUS = {"CP": "completed", "PA": "completed", "RE": "not-done", "NA": "not-done"}


def vaccine_concept(ce) -> dict | None:
    """A CE/CWE whose coding system CVX (table 0292) is named by FHIR's own URI."""
    concept = codeable_concept(ce)
    for coding in (concept or {}).get("coding", []):
        if coding.get("system", "").upper().endswith(":CVX") or coding.get("system") == coding_system("HL70292"):
            coding["system"] = CVX
    return concept


def changes(ctx: Context) -> Changes:
    """The Immunizations of a VXU (its Patient and Encounter are the caller's)."""
    out = Changes()
    orc = None
    rxas = []
    for segment in ctx.segments:
        if segment.name == "ORC":
            orc = segment
        elif segment.name == "RXA":
            rxas.append([orc, segment, None])
            orc = None
        elif segment.name == "RXR" and rxas and rxas[-1][2] is None:
            rxas[-1][2] = segment
    for position, (orc, rxa, rxr) in enumerate(rxas, 1):
        out.extend(_immunization(ctx, position, orc, rxa, rxr))
    return out


def _immunization(ctx: Context, position: int, orc, rxa, rxr) -> Changes:
    out = Changes()
    where = f"RXA^{position}"
    codes = repetitions(rxa, 5)
    vaccine = vaccine_concept(codes[0]) if codes else None
    if vaccine is None:
        raise Problem(101, "RXA-5 (administered code) is empty", f"{where}^5", "AE")
    when = date_time(field(rxa, 3, 1))
    if when is None:
        raise Problem(101, "RXA-3 (start of administration) is empty or not a date", f"{where}^3", "AE")
    status = _STATUS.get(field(rxa, 20).upper(), "completed")
    if field(rxa, 21).upper() == "D":
        status = "entered-in-error"
    resource: dict = {"resourceType": "Immunization"}
    identifiers = list(reversed(orc_segment.identifiers(ctx, orc)))  # the filler's first: it keeps the record
    if identifiers:
        resource["identifier"] = identifiers
    resource.update(status=status, vaccineCode=vaccine, patient={"reference": ctx.patient})
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    resource["occurrenceDateTime"] = when
    source = field(rxa, 9, 1)
    if source.isdigit():
        resource["primarySource"] = source == "00"  # NIP001: 00 new record, 01-08 historical
    refusal = repetitions(rxa, 18)
    reason = codeable_concept(refusal[0]) if status == "not-done" and refusal else None
    if reason:
        resource["statusReason"] = reason
    if field(rxa, 15):
        resource["lotNumber"] = field(rxa, 15)
    expires = date_only(field(rxa, 16, 1))
    if expires:
        resource["expirationDate"] = expires
    maker = field(rxa, 17, 2) or field(rxa, 17, 1)
    if maker:
        resource["manufacturer"] = {"display": maker}
    dose = _dose(rxa)
    if dose:
        resource["doseQuantity"] = dose
    if rxr is not None:
        for key, number in (("route", 1), ("site", 2)):
            reps = repetitions(rxr, number)
            concept = codeable_concept(reps[0]) if reps else None
            if concept:
                resource[key] = concept
    for xcn in repetitions(rxa, 10)[:1]:
        made = practitioner(xcn, ctx.authority)
        if made is not None:
            ref = out.add(created_once("Practitioner", *made), f"{where}^10")
            resource["performer"] = [{"function": {"coding": [{"system": PERFORMER_FUNCTION, "code": "AP"}]},
                                      "actor": {"reference": ref}}]
    out.add(ctx.keyed_or_created("Immunization", resource, identifiers[0] if identifiers else None, where), where)
    return out


def _dose(rxa) -> dict | None:
    amount = field(rxa, 6)
    if not amount or amount == "999":  # 999: amount unknown (CDC IG)
        return None
    try:
        number = float(amount)
    except ValueError:
        return None
    quantity: dict = {"value": int(number) if number.is_integer() and "." not in amount else number}
    units = repetitions(rxa, 7)
    if units and value(units[0], 1):
        quantity["unit"] = value(units[0], 2) or value(units[0], 1)
        if coding_system(value(units[0], 3)) == UCUM:
            quantity.update(system=UCUM, code=value(units[0], 1))
    return quantity
