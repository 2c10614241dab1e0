"""tools/required_bindings.py on small made-up definitions: how value sets expand, what is left out."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "required_bindings", Path(__file__).resolve().parents[2] / "tools" / "required_bindings.py")
generator = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(generator)

CS = "http://example.org/cs"


def terminology() -> generator.Terminology:
    return generator.Terminology([
        {"resourceType": "CodeSystem", "url": CS, "content": "complete",
         "concept": [{"code": "a", "concept": [{"code": "a1"}]}, {"code": "b"}]},
        {"resourceType": "CodeSystem", "url": "http://example.org/fragment", "content": "fragment",
         "concept": [{"code": "x"}]},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/all", "compose": {"include": [{"system": CS}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/some",
         "compose": {"include": [{"system": CS, "concept": [{"code": "b"}]},
                                 {"system": "http://other", "concept": [{"code": "z"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/but-a1",
         "compose": {"include": [{"valueSet": ["http://example.org/vs/all|1.0"]}],
                     "exclude": [{"system": CS, "concept": [{"code": "a1"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/filter",
         "compose": {"include": [{"system": CS, "filter": [{"property": "concept", "op": "is-a", "value": "a"}]}]}},
        {"resourceType": "ValueSet", "url": "http://example.org/vs/fragment",
         "compose": {"include": [{"system": "http://example.org/fragment"}]}},
    ])


def test_value_sets_expand_from_their_code_systems():
    t = terminology()
    assert t.expand("http://example.org/vs/all") == {CS: ["a", "a1", "b"]}  # nested concepts too
    assert t.expand("http://example.org/vs/some|4.0.1") == {CS: ["b"], "http://other": ["z"]}
    assert t.expand("http://example.org/vs/but-a1") == {CS: ["a", "b"]}


@pytest.mark.parametrize("url", ["http://example.org/vs/filter", "http://example.org/vs/fragment",
                                 "http://example.org/vs/unknown"])
def test_what_cannot_be_enumerated_is_said(url):
    with pytest.raises(generator.NotEnumerable):
        terminology().expand(url)


def test_type_elements_spell_choices_as_in_json_and_skip_extensions():
    sd = {"snapshot": {"element": [
        {"path": "Thing", "isModifier": False},
        {"path": "Thing.status", "isModifier": True, "type": [{"code": "code"}],
         "binding": {"strength": "required", "valueSet": "http://example.org/vs/all|4.0.1"}},
        {"path": "Thing.value[x]", "isModifier": False, "type": [{"code": "Quantity"}, {"code": "string"}]},
        {"path": "Thing.part", "isModifier": False, "type": [{"code": "BackboneElement"}]},
        {"path": "Thing.part.part", "isModifier": False, "contentReference": "#Thing.part"},
        {"path": "Thing.extension", "isModifier": False, "type": [{"code": "Extension"}]},
        {"path": "Thing.added", "type": [{"code": "code"}],  # no isModifier: not R4's (a Medplum addition)
         "binding": {"strength": "required", "valueSet": "http://example.org/vs/all"}},
    ]}}
    assert generator.type_elements(sd) == {
        "status": {"type": "code", "valueSet": "http://example.org/vs/all"},
        "valueQuantity": {"type": "Quantity"}, "valueString": {"type": "string"},
        "part": {"type": "BackboneElement"}, "part.part": {"ref": "part"},
    }


def test_the_committed_table_is_compact():
    table = Path(__file__).resolve().parents[2] / "fhir_server" / "required-bindings.json"
    assert table.stat().st_size < 500_000
    assert json.loads(table.read_text())["source"]["generator"] == "tools/required_bindings.py"


def committed_codes(type_name: str, path: str) -> set[str]:
    table = json.loads((Path(__file__).resolve().parents[2] / "fhir_server" / "required-bindings.json").read_text())
    url = table["types"][type_name][path]["valueSet"]
    return {code for codes in table["valueSets"][url].values() for code in codes}


# R4 4.0.1's codes of every resource's bound status, as fhir.resources 6.4.0 (its last R4 release) lists them in
# its models' enum_values, from R4's ``short``: "+" there means "and more", so those codes are a part of the set.
R4_STATUS_CODES = {
    "Account.status": "active inactive entered-in-error on-hold unknown",
    "ActivityDefinition.status": "draft active retired unknown",
    "Appointment.status": "proposed pending booked arrived fulfilled cancelled noshow entered-in-error "
                          "checked-in waitlist",
    "BiologicallyDerivedProduct.status": "available unavailable",
    "CapabilityStatement.status": "draft active retired unknown",
    "CarePlan.status": "draft active on-hold revoked completed entered-in-error unknown",
    "CareTeam.status": "proposed active suspended inactive entered-in-error",
    "CatalogEntry.status": "draft active retired unknown",
    "ChargeItem.status": "planned billable not-billable aborted billed entered-in-error unknown",
    "ChargeItemDefinition.status": "draft active retired unknown",
    "Claim.status": "active cancelled draft entered-in-error",
    "ClaimResponse.status": "active cancelled draft entered-in-error",
    "ClinicalImpression.status": "in-progress completed entered-in-error",
    "CodeSystem.status": "draft active retired unknown",
    "Communication.status": "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
    "CommunicationRequest.status": "draft active on-hold revoked completed entered-in-error unknown",
    "CompartmentDefinition.status": "draft active retired unknown",
    "Composition.status": "preliminary final amended entered-in-error",
    "ConceptMap.status": "draft active retired unknown",
    "Consent.status": "draft proposed active rejected inactive entered-in-error",
    "Contract.status": "amended appended cancelled disputed entered-in-error executable executed "
                       "negotiable offered policy rejected renewed revoked resolved terminated",
    "Coverage.status": "active cancelled draft entered-in-error",
    "CoverageEligibilityRequest.status": "active cancelled draft entered-in-error",
    "CoverageEligibilityResponse.status": "active cancelled draft entered-in-error",
    "DetectedIssue.status": "registered preliminary final amended +",
    "Device.status": "active inactive entered-in-error unknown",
    "DeviceRequest.status": "draft active on-hold revoked completed entered-in-error unknown",
    "DeviceUseStatement.status": "active completed entered-in-error +",
    "DiagnosticReport.status": "registered partial preliminary final +",
    "DocumentManifest.status": "current superseded entered-in-error",
    "DocumentReference.status": "current superseded entered-in-error",
    "EffectEvidenceSynthesis.status": "draft active retired unknown",
    "Encounter.status": "planned arrived triaged in-progress onleave finished cancelled +",
    "Endpoint.status": "active suspended error off entered-in-error test",
    "EnrollmentRequest.status": "active cancelled draft entered-in-error",
    "EnrollmentResponse.status": "active cancelled draft entered-in-error",
    "EpisodeOfCare.status": "planned waitlist active onhold finished cancelled entered-in-error",
    "EventDefinition.status": "draft active retired unknown",
    "Evidence.status": "draft active retired unknown",
    "EvidenceVariable.status": "draft active retired unknown",
    "ExampleScenario.status": "draft active retired unknown",
    "ExplanationOfBenefit.status": "active cancelled draft entered-in-error",
    "FamilyMemberHistory.status": "partial completed entered-in-error health-unknown",
    "Flag.status": "active inactive entered-in-error",
    "GraphDefinition.status": "draft active retired unknown",
    "GuidanceResponse.status": "success data-requested data-required in-progress failure entered-in-error",
    "ImagingStudy.status": "registered available cancelled entered-in-error unknown",
    "Immunization.status": "completed entered-in-error not-done",
    "ImmunizationEvaluation.status": "completed entered-in-error",
    "ImplementationGuide.status": "draft active retired unknown",
    "InsurancePlan.status": "draft active retired unknown",
    "Invoice.status": "draft issued balanced cancelled entered-in-error",
    "Library.status": "draft active retired unknown",
    "List.status": "current retired entered-in-error",
    "Location.status": "active suspended inactive",
    "Measure.status": "draft active retired unknown",
    "MeasureReport.status": "complete pending error",
    "Media.status": "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
    "Medication.status": "active inactive entered-in-error",
    "MedicationAdministration.status": "in-progress not-done on-hold completed entered-in-error stopped unknown",
    "MedicationDispense.status": "preparation in-progress cancelled on-hold completed entered-in-error "
                                 "stopped declined unknown",
    "MedicationKnowledge.status": "active inactive entered-in-error",
    "MedicationRequest.status": "active on-hold cancelled completed entered-in-error stopped draft unknown",
    "MedicationStatement.status": "active completed entered-in-error intended stopped on-hold unknown not-taken",
    "MessageDefinition.status": "draft active retired unknown",
    "NamingSystem.status": "draft active retired unknown",
    "Narrative.status": "generated extensions additional empty",
    "NutritionOrder.status": "draft active on-hold revoked completed entered-in-error unknown",
    "Observation.status": "registered preliminary final amended +",
    "OperationDefinition.status": "draft active retired unknown",
    "PaymentNotice.status": "active cancelled draft entered-in-error",
    "PaymentReconciliation.status": "active cancelled draft entered-in-error",
    "PlanDefinition.status": "draft active retired unknown",
    "Procedure.status": "preparation in-progress not-done on-hold stopped completed entered-in-error unknown",
    "Questionnaire.status": "draft active retired unknown",
    "QuestionnaireResponse.status": "in-progress completed amended entered-in-error stopped",
    "RequestGroup.status": "draft active on-hold revoked completed entered-in-error unknown",
    "ResearchDefinition.status": "draft active retired unknown",
    "ResearchElementDefinition.status": "draft active retired unknown",
    "ResearchStudy.status": "active administratively-completed approved closed-to-accrual "
                            "closed-to-accrual-and-intervention completed disapproved in-review "
                            "temporarily-closed-to-accrual temporarily-closed-to-accrual-and-intervention "
                            "withdrawn",
    "ResearchSubject.status": "candidate eligible follow-up ineligible not-registered off-study on-study "
                              "on-study-intervention on-study-observation pending-on-study "
                              "potential-candidate screening withdrawn",
    "RiskAssessment.status": "registered preliminary final amended +",
    "RiskEvidenceSynthesis.status": "draft active retired unknown",
    "SearchParameter.status": "draft active retired unknown",
    "ServiceRequest.status": "draft active on-hold revoked completed entered-in-error unknown",
    "Slot.status": "busy free busy-unavailable busy-tentative entered-in-error",
    "Specimen.status": "available unavailable unsatisfactory entered-in-error",
    "StructureDefinition.status": "draft active retired unknown",
    "StructureMap.status": "draft active retired unknown",
    "Subscription.status": "requested active error off",
    "Substance.status": "active inactive entered-in-error",
    "SupplyDelivery.status": "in-progress completed abandoned entered-in-error",
    "SupplyRequest.status": "draft active suspended +",
    "Task.status": "draft requested received accepted +",
    "TerminologyCapabilities.status": "draft active retired unknown",
    "TestReport.status": "completed in-progress waiting stopped entered-in-error",
    "TestScript.status": "draft active retired unknown",
    "ValueSet.status": "draft active retired unknown",
    "VerificationResult.status": "attested validated in-process req-revalid val-fail reval-fail",
    "VisionPrescription.status": "active cancelled draft entered-in-error",
}


@pytest.mark.parametrize("element", sorted(R4_STATUS_CODES))
def test_the_committed_table_agrees_with_r4_on_status(element):
    type_name, _, path = element.partition(".")
    r4 = R4_STATUS_CODES[element].split()
    committed = committed_codes(type_name, path)
    if r4[-1] == "+":
        assert set(r4[:-1]) <= committed
    else:
        assert set(r4) == committed


def test_where_the_package_is_not_r4_the_table_is():
    # DetectedIssue.status: R4 binds observation-status (the package had R5's detectedissue-status).
    assert committed_codes("DetectedIssue", "status") == {
        "registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}
    # EvidenceVariable.characteristic.groupMeasure: R4's (the package's characteristic is R5's).
    assert committed_codes("EvidenceVariable", "characteristic.groupMeasure") == {
        "mean", "median", "mean-of-mean", "mean-of-median", "median-of-mean", "median-of-median"}
    assert set(generator.R4_BINDINGS) == {"DetectedIssue", "EvidenceVariable"}
