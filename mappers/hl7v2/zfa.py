"""PAM France's ZFA -> the patient's DMP status (an extension on the Patient) and one Consent for
feeding the DMP and one for consulting it. Pure.

ZFA-1 DMP status (ACTIF, FERME, ...), ZFA-2 its date, ZFA-3 closing date; ZFA-9/10 information and
objection to feeding and its date, ZFA-11/12 to consultation: INO informed, no objection; IO informed,
objects; IC informed, consents; INC informed, does not consent; NA not collected (no Consent: what is
stored stays). A Consent (contract in fhir_server/codes.py) is active, its category
``CONSENT_KIND_SYSTEM|dmp-feeding`` or ``|dmp-consultation``, provision deny on objection, else permit.
"""

from __future__ import annotations

from fhir_server.codes import CONSENT_KIND_SYSTEM, DMP_CONSULTATION, DMP_FEEDING, RELAIS_CODE_SYSTEMS

from .changes import made_up
from .datatypes import date_time
from .problems import Problem
from .zsegment import part

DMP_STATUS = "https://relais.example/fhir/StructureDefinition/dmp-status"
DMP_STATUS_SYSTEM = f"{RELAIS_CODE_SYSTEMS}/dmp-status"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
# answer -> provision type; the regime of each kind: feeding unless the patient objects (CSP L1111-15),
# consultation outside the care team with the patient's consent (L1111-17)
_ANSWERS = {
    DMP_FEEDING: ({"INO": "permit", "IO": "deny"}, "OPTOUT", "Alimentation du DMP"),
    DMP_CONSULTATION: ({"IC": "permit", "INC": "deny"}, "OPTIN", "Consultation du DMP"),
}
_FIELDS = {DMP_FEEDING: (9, 10), DMP_CONSULTATION: (11, 12)}


def dmp_status(zfa) -> dict | None:
    """ZFA-1 to 3 as the DMP status extension; None when ZFA-1 is empty."""
    status = part(zfa, 1).upper()
    if not status:
        return None
    parts = [{"url": "status", "valueCoding": {"system": DMP_STATUS_SYSTEM, "code": status}}]
    for name, number in (("date", 2), ("closed", 3)):
        when = _time(zfa, number)
        if when:
            parts.append({"url": name, "valueDateTime": when})
    return {"url": DMP_STATUS, "extension": parts}


def consents(zfa, patient_ref: str, patient_key: str) -> list[tuple[dict, dict, str]]:
    """(Consent, its key, its source) for each of feeding and consultation the ZFA answers."""
    found = []
    for kind, (answers, regime, label) in _ANSWERS.items():
        answer_field, date_field = _FIELDS[kind]
        answer = part(zfa, answer_field).upper()
        if answer not in answers:
            if answer and answer != "NA":
                raise Problem(103, f"ZFA-{answer_field} {answer!r} is none of {', '.join(answers)}, NA",
                              f"ZFA^1^{answer_field}")
            continue
        consent: dict = {
            "resourceType": "Consent",
            "identifier": [made_up("consent", patient_key, kind)],
            "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": CONSENT_KIND_SYSTEM, "code": kind, "display": label}]}],
            "patient": {"reference": patient_ref},
            "policyRule": {"coding": [{"system": ACT_CODE, "code": regime}]},
            "provision": {"type": answers[answer]},
        }
        when = _time(zfa, date_field)
        if when:
            consent["dateTime"] = when
        found.append((consent, consent["identifier"][0], f"ZFA^1^{answer_field}"))
    return found


def _time(zfa, number: int) -> str | None:
    text = part(zfa, number)
    if not text:
        return None
    converted = date_time(text)
    if converted is None:
        raise Problem(102, f"ZFA-{number} {text!r} is not an HL7 timestamp", f"ZFA^1^{number}")
    return converted
