"""Patient compartment membership: which patients a resource belongs to (R4 CompartmentDefinition "patient").

Only the element paths of the compartment's parameters count: a Group listing a patient or a
Practitioner mentioning one is not in that patient's compartment.
"""

from __future__ import annotations

from collections.abc import Iterable

# Resource type -> element paths (dotted, arrays flattened) whose references put it in a patient's
# compartment; from the R4 CompartmentDefinition "patient", limited to the Patient-typed params.
PATIENT_COMPARTMENT: dict[str, tuple[str, ...]] = {
    "Account": ("subject",),
    "AllergyIntolerance": ("patient", "recorder", "asserter"),
    "Appointment": ("participant.actor",),
    "AuditEvent": ("agent.who", "entity.what"),
    "Basic": ("subject", "author"),
    "CarePlan": ("subject", "activity.detail.performer"),
    "CareTeam": ("subject", "participant.member"),
    "ClinicalImpression": ("subject",),
    "Communication": ("subject", "sender", "recipient"),
    "CommunicationRequest": ("subject", "sender", "recipient", "requester"),
    "Composition": ("subject", "author", "attester.party"),
    "Condition": ("subject", "asserter"),
    "Consent": ("patient",),
    "Coverage": ("policyHolder", "subscriber", "beneficiary", "payor"),
    "DetectedIssue": ("patient",),
    "Device": ("patient",),
    "DeviceRequest": ("subject", "performer"),
    "DeviceUseStatement": ("subject",),
    "DiagnosticReport": ("subject",),
    "DocumentManifest": ("subject", "author", "recipient"),
    "DocumentReference": ("subject", "author"),
    "Encounter": ("subject",),
    "EpisodeOfCare": ("patient",),
    "FamilyMemberHistory": ("patient",),
    "Flag": ("subject",),
    "Goal": ("subject",),
    "ImagingStudy": ("subject",),
    "Immunization": ("patient",),
    "List": ("subject", "source"),
    "MedicationAdministration": ("subject", "performer.actor"),
    "MedicationDispense": ("subject", "receiver"),
    "MedicationRequest": ("subject",),
    "MedicationStatement": ("subject",),
    "NutritionOrder": ("patient",),
    "Observation": ("subject", "performer"),
    "Procedure": ("subject", "performer.actor"),
    "Provenance": ("target",),
    "QuestionnaireResponse": ("subject", "author"),
    "RelatedPerson": ("patient",),
    "RiskAssessment": ("subject",),
    "ServiceRequest": ("subject", "performer"),
    "Specimen": ("subject",),
}

# Not in any patient's compartment but needed to make sense of one (who performed, which ward):
# patient/ scopes may read and search these, never write them.
SHARED_TYPES = frozenset({"Practitioner", "PractitionerRole", "Organization", "Location", "Medication"})


def _values(node: object, path: list[str]) -> Iterable[object]:
    if isinstance(node, list):
        for item in node:
            yield from _values(item, path)
        return
    if not path:
        yield node
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values(node[path[0]], path[1:])


def _patient_id(reference: object) -> str | None:
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str):
        return None
    # relative "Patient/1", absolute ".../Patient/1", versioned ".../Patient/1/_history/2"
    parts = text.split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    if len(parts) >= 2 and parts[-2] == "Patient" and parts[-1]:
        return parts[-1]
    return None


def patient_ids(resource_type: str | None, resource: dict | None) -> set[str]:
    """Ids of the patients whose compartment ``resource`` is in (the patient itself for a Patient)."""
    if not resource:
        return set()
    if resource_type == "Patient":
        found = {resource["id"]} if isinstance(resource.get("id"), str) else set()
        found.update(filter(None, (_patient_id(v) for v in _values(resource, ["link", "other"]))))
        return found
    found: set[str] = set()
    for path in PATIENT_COMPARTMENT.get(resource_type or "", ()):
        found.update(filter(None, (_patient_id(v) for v in _values(resource, path.split(".")))))
    return found


def in_compartment(resource_type: str | None, resource: dict | None, patient: str) -> bool:
    """Whether ``resource`` belongs to the compartment of Patient/``patient``."""
    return patient in patient_ids(resource_type, resource)


def has_compartment(resource_type: str | None) -> bool:
    """Whether resources of this type can belong to a patient's compartment at all."""
    return resource_type == "Patient" or resource_type in PATIENT_COMPARTMENT
