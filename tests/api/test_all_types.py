"""Every R4 resource type is served: the 145 of R4's CompartmentDefinition, with their search parameters."""

from __future__ import annotations

import json

import pytest
from kit.shared import SHARED

from fhir_server import compartment
from fhir_server.resources import BASE_VALIDATED_TYPES, COMMON_TYPES, SUPPORTED_TYPES, fully_validated, validate
from fhir_server.search.registry import get_registry

# What these tests check is the types and their codes, not whether each reference's target exists.
SERVER_SETTINGS = {"allow_dangling_references": True}

# R4 types that R4B (fhir.resources) added: not R4, not served.
R4B_ONLY = ("Citation", "Evidence-Report", "EvidenceReport", "NutritionProduct", "AdministrableProductDefinition",
            "ClinicalUseDefinition", "Ingredient", "ManufacturedItemDefinition", "MedicinalProductDefinition",
            "PackagedProductDefinition", "RegulatedAuthorization", "SubstanceDefinition", "SubscriptionStatus",
            "SubscriptionTopic")

REF = {"reference": "Patient/p1"}
CC = {"text": "x"}
# The types the issue named as missing, each with a minimal valid body.
NAMED = {
    "AllergyIntolerance": {"patient": REF},
    "Location": {"name": "Ward 3"},
    "Medication": {"code": CC},
    "ServiceRequest": {"status": "active", "intent": "order", "subject": REF},
    "Questionnaire": {"status": "active"},
    "RelatedPerson": {"patient": REF},
    "Coverage": {"status": "active", "beneficiary": REF, "payor": [{"reference": "Organization/o1"}]},
    "Specimen": {"subject": REF},
    "MedicationStatement": {"status": "active", "medicationCodeableConcept": CC, "subject": REF},
    "Consent": {"status": "active", "scope": CC, "category": [CC], "patient": REF},
    "Immunization": {"status": "completed", "vaccineCode": CC, "patient": REF, "occurrenceDateTime": "2026-01-02"},
    "Procedure": {"status": "completed", "subject": REF},
    "DiagnosticReport": {"status": "final", "code": CC, "subject": REF},
    "Appointment": {"status": "booked", "participant": [{"actor": REF, "status": "accepted"}]},
}


def _definition_types() -> list[str]:
    definition = json.loads((SHARED / "fhir-r4" / "compartmentdefinition-patient.json").read_text(encoding="utf-8"))
    return [r["code"] for r in definition["resource"]]


def test_the_145_types_of_r4_are_served():
    assert len(SUPPORTED_TYPES) == 145 == len(set(SUPPORTED_TYPES))
    assert list(SUPPORTED_TYPES) == _definition_types()
    # Every base type of R4's search parameters is one of them (Resource and DomainResource are abstract).
    bases = {b for e in json.loads((SHARED / "fhir-r4" / "search-parameters.json").read_text())["entry"]
             for b in e["resource"].get("base", ())}
    assert bases - {"Resource", "DomainResource"} <= set(SUPPORTED_TYPES)
    assert not set(R4B_ONLY) & set(SUPPORTED_TYPES)
    assert set(COMMON_TYPES) <= set(SUPPORTED_TYPES) and BASE_VALIDATED_TYPES <= set(SUPPORTED_TYPES)


@pytest.mark.parametrize("resource_type", SUPPORTED_TYPES)
def test_every_type_has_its_search_parameters_and_its_place_in_the_compartment(resource_type):
    params = get_registry().params_for(resource_type)
    assert {"_id", "_lastUpdated"} <= set(params)
    for name in compartment.params(resource_type):
        assert params[name].type == "reference"


def test_types_without_an_r4b_model_are_served_and_their_base_checked(server):
    # R4's MedicinalProduct and Evidence (whose R4B model lost exposureBackground) as R4 writes them.
    product = {"resourceType": "MedicinalProduct", "name": [{"productName": "Doliprane 500 mg"}],
               "meta": {"tag": [{"code": "x"}]}}
    created = server.post("MedicinalProduct", product)
    assert created.status_code == 201, created.text
    assert server.get(f"MedicinalProduct/{created.json()['id']}").json()["name"] == product["name"]
    evidence = {"resourceType": "Evidence", "status": "draft", "exposureBackground": {"reference": "Group/g1"}}
    assert server.post("Evidence", evidence).status_code == 201
    assert server.get("MedicinalProduct?name=Doliprane").status_code == 200
    # Their Resource and DomainResource elements are checked all the same.
    bad_meta = server.post("MedicinalProduct", {**product, "meta": {"versionId": 3}})
    assert bad_meta.status_code == 422 and "meta" in bad_meta.text
    assert server.post("MedicinalProduct", {**product, "Name": "x"}).status_code == 422
    outcome = server.post("MedicinalProduct/$validate", product).json()
    assert any(i["severity"] == "warning" and "MedicinalProduct" in i["diagnostics"] for i in outcome["issue"])
    assert not fully_validated("SubstanceSpecification") and fully_validated("Observation")


def test_an_r4b_only_type_is_not_served(server):
    assert server.post("Citation", {"resourceType": "Citation", "status": "draft"}).status_code == 404
    assert server.get("NutritionProduct").status_code == 404
    with pytest.raises(Exception, match="not supported"):
        validate({"resourceType": "Citation", "status": "draft"})


def test_the_types_users_missed_are_created_read_and_searched(server):
    server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    for rtype, body in NAMED.items():
        created = server.post(rtype, {"resourceType": rtype, **body})
        assert created.status_code == 201, (rtype, created.text)
        rid = created.json()["id"]
        assert server.get(f"{rtype}/{rid}").status_code == 200
        found = server.get(rtype, params={"_id": rid}).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [rid], rtype
        if compartment.params(rtype):
            inside = server.get(f"Patient/p1/{rtype}").json()
            assert rid in {e["resource"]["id"] for e in inside["entry"]}, rtype
