"""IN1 (insurance) and the IN2 after it -> Coverage, as HL7's v2-to-FHIR ConceptMap maps it. Pure.

IN1-2 plan -> type, IN1-3/4 the insurer (its identifier and name: a logical reference, no
Organization is made up), IN1-12/13 period, IN1-17 insured's relationship (table 0063) ->
relationship, IN1-36 policy number -> identifier and subscriberId; IN2-2 (the insured's social
security number) stands for a missing IN1-36, IN2-61 member number -> identifier. Found again by its
patient, insurer and policy number (else plan).
"""

from __future__ import annotations

from urllib.parse import quote

from .changes import KEY_SYSTEM, made_up
from .datatypes import V2_0203, codeable_concept, identifier, timestamp
from .er7 import field, repetitions, value

SUBSCRIBER_RELATIONSHIP = "http://terminology.hl7.org/CodeSystem/subscriber-relationship"
_RELATIONSHIP = {"SEL": "self", "SPO": "spouse", "DOM": "common", "CHD": "child", "PAR": "parent", "EME": "other",
                 "OTH": "other"}


def coverage(in1, in2, index: int, patient_ref: str, patient_key: str, authority: str) -> tuple[dict, dict] | None:
    """(the Coverage of ``in1`` and its ``in2`` (or None), its key), None when IN1 names no insurer."""
    where = f"IN1^{index}"
    insurers = [i for i in (identifier(cx, authority) for cx in repetitions(in1, 3)) if i]
    insurer_name = field(in1, 4, 1)
    if not insurers and not insurer_name:
        return None
    payor: dict = {}
    if insurers:
        payor["identifier"] = {k: v for k, v in insurers[0].items() if k in ("system", "value")}
    if insurer_name:
        payor["display"] = insurer_name
    resource: dict = {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": patient_ref},
                      "payor": [payor]}
    plans = repetitions(in1, 2)
    plan = codeable_concept(plans[0]) if plans else None
    if plan:
        resource["type"] = plan
    period = {}
    for number, bound in ((12, "start"), (13, "end")):
        when = timestamp(in1, number, f"IN1-{number}", f"{where}^{number}", "date")
        if when:
            period[bound] = when
    if period:
        resource["period"] = period
    relation = field(in1, 17, 1).upper()
    if relation in _RELATIONSHIP:
        resource["relationship"] = {"coding": [{"system": SUBSCRIBER_RELATIONSHIP, "code": _RELATIONSHIP[relation]}]}
    policy = field(in1, 36) or (field(in2, 2) if in2 is not None else "")
    identifiers = []
    insurer_id = payor.get("identifier", {}).get("value") or insurer_name
    if policy:
        resource["subscriberId"] = policy
        identifiers.append({"system": f"{KEY_SYSTEM}policy:{quote(insurer_id, safe='-._~')}", "value": policy})
    member = [value(cx, 1) for cx in (repetitions(in2, 61) if in2 is not None else []) if value(cx, 1)]
    for number in member:
        identifiers.append({"type": {"coding": [{"system": V2_0203, "code": "MB"}]},
                            "system": f"{KEY_SYSTEM}member:{quote(insurer_id, safe='-._~')}", "value": number})
    # the patient is part of the key: in France a policy number (the insured's NIR) is shared by the
    # insured's dependants (ayants droit), each with a Coverage of their own
    plan_code = ((plan or {}).get("coding") or [{}])[0].get("code", "")
    key = made_up("coverage", patient_key, insurer_id, policy or plan_code)
    resource["identifier"] = [key, *identifiers]
    return resource, key
