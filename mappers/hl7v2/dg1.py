"""DG1 (diagnosis) -> Condition (category encounter-diagnosis), as HL7's v2-to-FHIR ConceptMap maps it. Pure.

DG1-3 code, DG1-5 diagnosis date -> onsetDateTime, DG1-6 type (A admitting, W working: provisional;
F final: confirmed), DG1-16 clinician -> asserter, DG1-19 attestation -> recordedDate, DG1-20 its
identifier (v2.5 on), DG1-21 action (D: the diagnosis was sent in error). Without DG1-20 a diagnosis
is found again by its visit (else patient) and code, so a working diagnosis made final updates it.
"""

from __future__ import annotations

from collections.abc import Callable

from .changes import entity_identifier, made_up
from .datatypes import codeable_concept, timestamp
from .er7 import field, repetitions

CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"


def condition(dg1, index: int, subject: str, visit: str | None, scope_key: str, authority: str,
              professional: Callable[[object], dict | None]) -> tuple[dict, dict] | None:
    """(the Condition of ``dg1``, its key), None when DG1-3 is empty; ``scope_key``: the visit's (else
    the patient's) key, which a diagnosis without DG1-20 is found under."""
    reps = repetitions(dg1, 3)
    code = codeable_concept(reps[0]) if reps else None
    if code is None:
        return None
    where = f"DG1^{index}"
    removed = field(dg1, 21).upper() == "D"
    final = field(dg1, 6).upper() == "F"
    resource: dict = {
        "resourceType": "Condition",
        "category": [{"coding": [{"system": CATEGORY, "code": "encounter-diagnosis",
                                  "display": "Encounter Diagnosis"}]}],
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "entered-in-error" if removed
                                           else "confirmed" if final else "provisional"}]},
        "code": code,
        "subject": {"reference": subject},
    }
    if not removed:
        resource["clinicalStatus"] = {"coding": [{"system": CLINICAL, "code": "active"}]}
    if visit:
        resource["encounter"] = {"reference": visit}
    for number, element in ((5, "onsetDateTime"), (19, "recordedDate")):
        when = timestamp(dg1, number, f"DG1-{number}", f"{where}^{number}")
        if when:
            resource[element] = when
    for xcn in repetitions(dg1, 16)[:1]:
        asserter = professional(xcn)
        if asserter is not None:
            resource["asserter"] = asserter
    own = [i for i in (entity_identifier(ei, authority) for ei in repetitions(dg1, 20)) if i]
    first = (code.get("coding") or [{}])[0]
    key = own[0] if own else made_up("diagnosis", scope_key, first.get("system", ""), first.get("code", ""))
    resource["identifier"] = [key]
    return resource, key
