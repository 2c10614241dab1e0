"""The resource-type registry and validation against the fhir.resources R4B models."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from . import limits
from .bindings import check_required_bindings
from .errors import FHIRError, issue

# Every resource type of FHIR R4 4.0.1: the 145 that R4's Patient CompartmentDefinition lists (the one we
# ship, fhir_server/compartmentdefinition-patient.json; tests check the two agree). The CapabilityStatement,
# the routes, $everything and export follow this tuple.
SUPPORTED_TYPES: tuple[str, ...] = (
    "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment", "AppointmentResponse",
    "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BodyStructure", "Bundle", "CapabilityStatement",
    "CarePlan", "CareTeam", "CatalogEntry", "ChargeItem", "ChargeItemDefinition", "Claim", "ClaimResponse",
    "ClinicalImpression", "CodeSystem", "Communication", "CommunicationRequest", "CompartmentDefinition",
    "Composition", "ConceptMap", "Condition", "Consent", "Contract", "Coverage", "CoverageEligibilityRequest",
    "CoverageEligibilityResponse", "DetectedIssue", "Device", "DeviceDefinition", "DeviceMetric", "DeviceRequest",
    "DeviceUseStatement", "DiagnosticReport", "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis",
    "Encounter", "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition",
    "Evidence", "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
    "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy", "Immunization",
    "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan", "Invoice",
    "Library", "Linkage", "List", "Location", "Measure", "MeasureReport", "Media", "Medication",
    "MedicationAdministration", "MedicationDispense", "MedicationKnowledge", "MedicationRequest",
    "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization", "MedicinalProductContraindication",
    "MedicinalProductIndication", "MedicinalProductIngredient", "MedicinalProductInteraction",
    "MedicinalProductManufactured", "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "MessageDefinition", "MessageHeader", "MolecularSequence", "NamingSystem",
    "NutritionOrder", "Observation", "ObservationDefinition", "OperationDefinition", "OperationOutcome",
    "Organization", "OrganizationAffiliation", "Patient", "PaymentNotice", "PaymentReconciliation", "Person",
    "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance", "Questionnaire",
    "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition", "ResearchElementDefinition",
    "ResearchStudy", "ResearchSubject", "RiskAssessment", "RiskEvidenceSynthesis", "Schedule", "SearchParameter",
    "ServiceRequest", "Slot", "Specimen", "SpecimenDefinition", "StructureDefinition", "StructureMap",
    "Subscription", "Substance", "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein",
    "SubstanceReferenceInformation", "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery",
    "SupplyRequest", "Task", "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult",
    "VisionPrescription",
)

# The types most deployments write: create_app compiles their search extraction ahead; the others
# compile at their first resource (see app.py).
COMMON_TYPES: tuple[str, ...] = (
    "Patient", "Observation", "Condition", "MedicationRequest", "Practitioner", "PractitionerRole", "Organization",
    "CareTeam", "Encounter", "Device", "QuestionnaireResponse", "Communication", "Flag", "Task", "DetectedIssue",
    "DocumentReference", "Composition", "Binary", "List", "Subscription", "AuditEvent", "Provenance", "CarePlan",
    "Goal", "Group", "SearchParameter", "StructureDefinition", "DiagnosticReport", "Procedure", "Immunization",
    "Claim", "ExplanationOfBenefit", "AllergyIntolerance", "Location", "Medication", "ServiceRequest",
    "Questionnaire", "RelatedPerson", "Coverage", "Specimen", "MedicationStatement", "Consent", "Appointment",
)

# R4 types that fhir.resources R4B has no model of the same shape for: R4B replaced the MedicinalProduct*
# family (by MedicinalProductDefinition...) and the Substance* details (by SubstanceDefinition), removed
# EffectEvidenceSynthesis and RiskEvidenceSynthesis, and rewrote Evidence and EvidenceVariable (R4's
# Evidence.exposureBackground is gone). These are served, and their Resource and DomainResource elements
# (id, meta, text, extension, contained...) are checked; the rest of their content is stored as sent.
BASE_VALIDATED_TYPES: frozenset[str] = frozenset({
    "EffectEvidenceSynthesis", "Evidence", "EvidenceVariable", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
    "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis",
    "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification",
})

_BASE_ELEMENTS = frozenset({"id", "meta", "implicitRules", "language", "text", "contained", "extension",
                            "modifierExtension", "_implicitRules", "_language"})
_ELEMENT_NAME = re.compile(r"^_?[a-z][A-Za-z0-9]{0,63}$")

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def is_supported(resource_type: str) -> bool:
    return resource_type in _SUPPORTED


_SUPPORTED = frozenset(SUPPORTED_TYPES)


def valid_id(value: Any) -> bool:
    """A FHIR logical id: 1 to 64 of [A-Za-z0-9-.]."""
    return isinstance(value, str) and bool(_ID.match(value))


def with_references(node: Any, resolve: Callable[[str], str]) -> Any:
    """A copy of the JSON tree ``node`` with every ``reference`` string replaced by ``resolve(reference)``;
    ``node`` is left as it was. One walk: copy.deepcopy then a rewrite in place took 3 times as long (the 51
    resources of a telemonitoring batch: 2.9 against 1.0 ms)."""
    kind = type(node)
    if kind is dict:
        return {key: resolve(value) if key == "reference" and type(value) is str
                else with_references(value, resolve) if type(value) in (dict, list) else value
                for key, value in node.items()}
    if kind is list:
        return [with_references(item, resolve) if type(item) in (dict, list) else item for item in node]
    return node


@cache
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def _base_part(resource: dict) -> dict:
    """What the R4B DomainResource model can check of a resource whose own model it lacks."""
    for key in resource:
        if key != "resourceType" and not _ELEMENT_NAME.match(key):
            raise FHIRError(422, f"{resource['resourceType']}: {key!r} is not a FHIR element name", code="structure",
                            expression=[f"{resource['resourceType']}.{key}"])
    part = {k: v for k, v in resource.items() if k in _BASE_ELEMENTS}
    part["resourceType"] = "DomainResource"
    return part


def fully_validated(resource_type: str) -> bool:
    """Whether a type's whole content is checked (False: its base elements only, see BASE_VALIDATED_TYPES)."""
    return resource_type not in BASE_VALIDATED_TYPES


def validate(resource: Any, expected_type: str | None = None) -> None:
    """Raise FHIRError (400 or 422) unless ``resource`` is a valid R4 resource of a supported type."""
    if not isinstance(resource, dict):
        raise FHIRError(400, "The body is not a JSON object", code="structure")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FHIRError(400, "The body has no resourceType", code="structure", expression=["resourceType"])
    if expected_type is not None and resource_type != expected_type:
        raise FHIRError(
            400,
            f"resourceType {resource_type!r} does not match the URL's type {expected_type!r}",
            code="invalid",
            expression=["resourceType"],
        )
    if not is_supported(resource_type):
        raise FHIRError(400, f"Resource type {resource_type!r} is not supported here", code="not-supported")
    if "id" in resource and not valid_id(resource["id"]):
        raise FHIRError(400, f"Invalid id {resource['id']!r}", code="invalid", expression=[f"{resource_type}.id"])
    limits.check(resource)  # before the model: its cost grows with the size of the resource
    # A type R4B has no model for is checked as a DomainResource (its base elements only).
    checked, model = resource, resource_type
    if resource_type in BASE_VALIDATED_TYPES:
        checked, model = _base_part(resource), "DomainResource"
    try:
        _model(model).model_validate(checked)
    except ValidationError as exc:
        paths = [(_path(resource_type, err["loc"]), err["msg"]) for err in exc.errors(include_url=False)]
        issues = [issue("error", "invalid", f"{path}: {msg}", [path]) for path, msg in paths]
        raise FHIRError(422, issues[0]["diagnostics"], code="invalid", issues=issues) from None
    except Exception as exc:  # noqa: BLE001
        # Some malformed inputs fail inside the model library rather than as a ValidationError
        # (an unknown contained resourceType raises KeyError): they are still the client's error.
        raise FHIRError(422, f"{resource_type}: invalid content ({type(exc).__name__}: {exc})"[:500],
                        code="invalid") from None
    check_required_bindings(resource)


def _path(resource_type: str, loc: tuple) -> str:
    """A pydantic location as a FHIRPath expression: ('component', 0, 'code') -> X.component[0].code."""
    path = resource_type
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part and not str(part).startswith(("function-", "model-")):
            path += f".{part}"
    return path
