"""AL1 (patient allergy information) -> AllergyIntolerance, as HL7's v2-to-FHIR ConceptMap maps it. Pure.

AL1-2 allergen type (table 0127) -> category, AL1-3 allergen -> code, AL1-4 severity (table 0128)
-> criticality, AL1-5 reactions -> reaction.manifestation, AL1-6 identification date -> onsetDateTime.
HL7 v2 gives an allergy no identifier: it is found again by its patient and allergen.
"""

from __future__ import annotations

from .changes import made_up
from .datatypes import codeable_concept, timestamp
from .er7 import field, repetitions, value

CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
_CATEGORY = {"DA": "medication", "FA": "food", "EA": "environment", "PA": "environment", "LA": "environment",
             "AA": "environment", "MA": None, "MC": None, "PLA": "environment"}
_TYPE = {"DA": "allergy", "FA": "allergy", "EA": "allergy", "PA": "allergy", "LA": "allergy", "AA": "allergy",
         "MC": "intolerance", "MA": None}
_CRITICALITY = {"SV": "high", "MO": "low", "MI": "low", "U": "unable-to-assess"}


def allergy(al1, index: int, patient_ref: str, patient_key: str) -> tuple[dict, dict] | None:
    """(the AllergyIntolerance of ``al1``, its key), None when AL1-3 names no allergen."""
    reps = repetitions(al1, 3)
    code = codeable_concept(reps[0]) if reps else None
    if code is None:
        return None
    resource: dict = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": "confirmed"}]},
        "code": code,
        "patient": {"reference": patient_ref},
    }
    kind = field(al1, 2, 1).upper()
    if _CATEGORY.get(kind):
        resource["category"] = [_CATEGORY[kind]]
    if _TYPE.get(kind):
        resource["type"] = _TYPE[kind]
    severity = field(al1, 4, 1).upper()
    if severity in _CRITICALITY:
        resource["criticality"] = _CRITICALITY[severity]
    reactions = [value(rep, 1) for rep in repetitions(al1, 5) if value(rep, 1)]
    if reactions:
        resource["reaction"] = [{"manifestation": [{"text": text} for text in reactions]}]
    identified = timestamp(al1, 6, "AL1-6 (identification date)", f"AL1^{index}^6", "date")
    if identified:
        resource["onsetDateTime"] = identified
    first = (code.get("coding") or [{}])[0]
    key = made_up("allergy", patient_key, first.get("system", ""), first.get("code") or code.get("text", ""))
    resource["identifier"] = [key]
    return resource, key
