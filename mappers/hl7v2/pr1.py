"""PR1 (procedure) -> Procedure, as HL7's v2-to-FHIR ConceptMap maps it. Pure.

PR1-3 code, PR1-5 date -> performedDateTime, PR1-11 surgeon and PR1-12 anesthesiologist ->
performer, PR1-19 its identifier (v2.5 on), PR1-20 action (D: sent in error). Without PR1-19 a
procedure is found again by its visit (else patient), code and date.
"""

from __future__ import annotations

from collections.abc import Callable

from .changes import entity_identifier, made_up
from .datatypes import codeable_concept, timestamp
from .er7 import field, repetitions

SNOMED = "http://snomed.info/sct"
_FUNCTION = {11: ("304292004", "Surgeon"), 12: ("158970007", "Anesthetist")}


def procedure(pr1, index: int, subject: str, visit: str | None, scope_key: str, authority: str,
              professional: Callable[[object], dict | None]) -> tuple[dict, dict] | None:
    """(the Procedure of ``pr1``, its key), None when PR1-3 is empty."""
    reps = repetitions(pr1, 3)
    code = codeable_concept(reps[0]) if reps else None
    if code is None:
        return None
    where = f"PR1^{index}"
    resource: dict = {
        "resourceType": "Procedure",
        "status": "entered-in-error" if field(pr1, 20).upper() == "D" else "completed",
        "code": code,
        "subject": {"reference": subject},
    }
    if visit:
        resource["encounter"] = {"reference": visit}
    text = field(pr1, 5, 1)  # also a part of a made-up key
    when = timestamp(pr1, 5, "PR1-5 (procedure date)", f"{where}^5")
    if when:
        resource["performedDateTime"] = when
    performers = []
    for number, (snomed, display) in _FUNCTION.items():
        for xcn in repetitions(pr1, number):
            actor = professional(xcn)
            if actor is not None:
                performers.append({"function": {"coding": [{"system": SNOMED, "code": snomed, "display": display}]},
                                   "actor": actor})
    if performers:
        resource["performer"] = performers
    own = [i for i in (entity_identifier(ei, authority) for ei in repetitions(pr1, 19)) if i]
    first = (code.get("coding") or [{}])[0]
    key = own[0] if own else made_up("procedure", scope_key, first.get("system", ""), first.get("code", ""), text)
    resource["identifier"] = [key]
    return resource, key
