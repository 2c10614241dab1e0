"""PPR^PC1 (problem added), PC2 (updated), PC3 (deleted) -> one Condition per PRB on the patient's problem
list, found again by the problem instance id (PRB-4): an update or a deletion changes it. Pure."""

from __future__ import annotations

from .changes import Changes
from .context import Context, first_order_number
from .datatypes import codeable_concept, date_time
from .er7 import field, repetitions
from .problems import Problem

CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PROBLEM_LIST = {"coding": [{"system": CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}]}
# PRB-14 life cycle status and PRB-13 confirmation status, by code or by name
_CLINICAL = {"A": "active", "ACTIVE": "active", "I": "inactive", "INACTIVE": "inactive", "R": "resolved",
             "RESOLVED": "resolved", "RE": "recurrence", "RECURRENCE": "recurrence", "RL": "relapse",
             "RELAPSE": "relapse", "RM": "remission", "REMISSION": "remission"}
_VERIFICATION = {"C": "confirmed", "CONFIRMED": "confirmed", "P": "provisional", "PROVISIONAL": "provisional",
                 "D": "differential", "DIFFERENTIAL": "differential", "R": "refuted", "REFUTED": "refuted",
                 "U": "unconfirmed", "UNCONFIRMED": "unconfirmed"}


def changes(ctx: Context) -> Changes:
    """The Conditions of a PPR message (its Patient and Encounter are the caller's)."""
    out = Changes()
    for position, prb in ctx.required("PRB"):
        out.extend(_condition(ctx, position, prb))
    return out


def _status(table: dict, concept: dict | None) -> str | None:
    for coding in (concept or {}).get("coding", []):
        found = table.get(coding.get("code", "").upper())
        if found:
            return found
    return table.get((concept or {}).get("text", "").upper())


def _condition(ctx: Context, position: int, prb) -> Changes:
    out = Changes()
    where = f"PRB^{position}"
    key = first_order_number(prb, 4, "", ctx.authority)
    deleted = ctx.head.trigger == "PC3" or field(prb, 1).upper() == "DE"
    code_reps = repetitions(prb, 3)
    code = codeable_concept(code_reps[0]) if code_reps else None
    if code is None:
        raise Problem(101, "PRB-3 (problem id) is empty", f"{where}^3", "AE")
    resource: dict = {"resourceType": "Condition"}
    if key:
        resource["identifier"] = [key]
    abated = date_time(field(prb, 9, 1))
    clinical = _status(_CLINICAL, codeable_concept(repetitions(prb, 14)[0]) if repetitions(prb, 14) else None)
    verification = _status(_VERIFICATION, codeable_concept(repetitions(prb, 13)[0]) if repetitions(prb, 13)
                           else None)
    if deleted:
        resource["verificationStatus"] = _coded(VERIFICATION, "entered-in-error")
    else:
        resource["clinicalStatus"] = _coded(CLINICAL, clinical or ("resolved" if abated else "active"))
        if verification:
            resource["verificationStatus"] = _coded(VERIFICATION, verification)
    categories = [PROBLEM_LIST]
    classification = codeable_concept(repetitions(prb, 10)[0]) if repetitions(prb, 10) else None
    if classification:
        categories.append(classification)
    resource.update(category=categories, code=code, subject={"reference": ctx.patient})
    if ctx.encounter:
        resource["encounter"] = {"reference": ctx.encounter}
    onset = date_time(field(prb, 16, 1))
    if onset:
        resource["onsetDateTime"] = onset
    elif field(prb, 17):
        resource["onsetString"] = field(prb, 17)
    if abated and not deleted and resource["clinicalStatus"]["coding"][0]["code"] in ("inactive", "resolved",
                                                                                        "remission"):
        resource["abatementDateTime"] = abated
    recorded = date_time(field(prb, 7, 1)) or date_time(field(prb, 2, 1))
    if recorded:
        resource["recordedDate"] = recorded
    if key or ctx.head.trigger == "PC1":
        out.add(ctx.keyed_or_created("Condition", resource, key, where), where)
    else:
        raise Problem(101, f"PRB-4 (problem instance id) is empty: {ctx.head.trigger} cannot name the problem it"
                           " changes", f"{where}^4", "AE")
    return out


def _coded(system: str, code: str) -> dict:
    return {"coding": [{"system": system, "code": code}]}
