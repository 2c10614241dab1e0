"""The CapabilityStatement, its OpenAPI form and the SMART configuration: every claim is exercised.

The test reads what the server claims and tries it: each type is searched (with every declared search
parameter, include and revinclude, strictly) and read; each declared interaction is tried; each declared
operation is invoked; what is not declared is refused. A claim the test does not know how to try fails it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import requests
from kit.live import serve
from kit.stores import close_store, make_store

from fhir_server.api.openapi import openapi_document
from fhir_server.config import Config
from tests.access.authkit import AuthServer, ec_key, rsa_key, sqlite_store_fixture  # noqa: F401 (fixture)

STRICT = {"Prefer": "handling=strict"}
CHUNK = 40  # search parameters per request
REF = {"reference": "Patient/p1"}
CC = {"text": "x"}

# Bodies of types whose every element is optional need nothing more than their resourceType; the others
# get the elements they require, with the first code their model lists (generated once from the R4B
# models' required fields, then instants and the Subscription set by hand).
REQUIRED: dict[str, dict] = {'Account': {'status': 'active'},
 'ActivityDefinition': {'status': 'draft'},
 'AdverseEvent': {'actuality': 'actual', 'subject': {'reference': 'Patient/p1'}},
 'AllergyIntolerance': {'patient': {'reference': 'Patient/p1'}},
 'Appointment': {'participant': [{'status': 'accepted'}], 'status': 'proposed'},
 'AppointmentResponse': {'appointment': {'reference': 'Patient/p1'}, 'participantStatus': 'accepted'},
 'AuditEvent': {'agent': [{'requestor': True}],
                'recorded': '2026-01-01T00:00:00Z',
                'source': {'observer': {'reference': 'Patient/p1'}},
                'type': {'code': 'x'}},
 'Basic': {'code': {'text': 'x'}},
 'Binary': {'contentType': 'text/plain'},
 'BodyStructure': {'patient': {'reference': 'Patient/p1'}},
 'Bundle': {'type': 'document'},
 'CapabilityStatement': {'date': '2026-01-01',
                         'fhirVersion': '4.0.1',
                         'format': ['formats'],
                         'kind': 'instance',
                         'status': 'draft'},
 'CarePlan': {'intent': 'proposal', 'status': 'draft', 'subject': {'reference': 'Patient/p1'}},
 'CatalogEntry': {'orderable': True, 'referencedItem': {'reference': 'Patient/p1'}},
 'ChargeItem': {'code': {'text': 'x'}, 'status': 'planned', 'subject': {'reference': 'Patient/p1'}},
 'ChargeItemDefinition': {'status': 'draft', 'url': 'x'},
 'Claim': {'created': '2026-01-01',
           'insurance': [{'coverage': {'reference': 'Patient/p1'}, 'focal': True, 'sequence': 1}],
           'patient': {'reference': 'Patient/p1'},
           'priority': {'text': 'x'},
           'provider': {'reference': 'Patient/p1'},
           'status': 'active',
           'type': {'text': 'x'},
           'use': 'claim'},
 'ClaimResponse': {'created': '2026-01-01',
                   'insurer': {'reference': 'Patient/p1'},
                   'outcome': 'queued',
                   'patient': {'reference': 'Patient/p1'},
                   'status': 'active',
                   'type': {'text': 'x'},
                   'use': 'claim'},
 'ClinicalImpression': {'status': 'in-progress', 'subject': {'reference': 'Patient/p1'}},
 'CodeSystem': {'content': 'not-present', 'status': 'draft'},
 'Communication': {'status': 'preparation'},
 'CommunicationRequest': {'status': 'draft'},
 'CompartmentDefinition': {'code': 'Patient', 'name': 'x', 'search': True, 'status': 'draft', 'url': 'x'},
 'Composition': {'author': [{'reference': 'Patient/p1'}],
                 'date': '2026-01-01',
                 'status': 'preliminary',
                 'title': 'x',
                 'type': {'text': 'x'}},
 'ConceptMap': {'status': 'draft'},
 'Condition': {'subject': {'reference': 'Patient/p1'}},
 'Consent': {'category': [{'text': 'x'}], 'scope': {'text': 'x'}, 'status': 'draft'},
 'Coverage': {'beneficiary': {'reference': 'Patient/p1'},
              'payor': [{'reference': 'Patient/p1'}],
              'status': 'active'},
 'CoverageEligibilityRequest': {'created': '2026-01-01',
                                'insurer': {'reference': 'Patient/p1'},
                                'patient': {'reference': 'Patient/p1'},
                                'purpose': ['auth-requirements'],
                                'status': 'active'},
 'CoverageEligibilityResponse': {'created': '2026-01-01',
                                 'insurer': {'reference': 'Patient/p1'},
                                 'outcome': 'queued',
                                 'patient': {'reference': 'Patient/p1'},
                                 'purpose': ['auth-requirements'],
                                 'request': {'reference': 'Patient/p1'},
                                 'status': 'active'},
 'DetectedIssue': {'status': 'final'},
 'DeviceMetric': {'category': 'measurement', 'type': {'text': 'x'}},
 'DeviceRequest': {'codeCodeableConcept': {'text': 'x'},
                   'intent': 'proposal',
                   'subject': {'reference': 'Patient/p1'}},
 'DeviceUseStatement': {'device': {'reference': 'Patient/p1'},
                        'status': 'active',
                        'subject': {'reference': 'Patient/p1'}},
 'DiagnosticReport': {'code': {'text': 'x'}, 'status': 'registered'},
 'DocumentManifest': {'content': [{'reference': 'Patient/p1'}], 'status': 'current'},
 'DocumentReference': {'content': [{'attachment': {'contentType': 'text/plain'}}], 'status': 'current'},
 'Encounter': {'class': {'code': 'x'}, 'status': 'planned'},
 'Endpoint': {'address': 'http://x',
              'connectionType': {'code': 'x'},
              'payloadType': [{'text': 'x'}],
              'status': 'active'},
 'EpisodeOfCare': {'patient': {'reference': 'Patient/p1'}, 'status': 'planned'},
 'EventDefinition': {'status': 'draft', 'trigger': [{'type': 'named-event'}]},
 'ExampleScenario': {'status': 'draft'},
 'ExplanationOfBenefit': {'created': '2026-01-01',
                          'insurance': [{'coverage': {'reference': 'Patient/p1'}, 'focal': True}],
                          'insurer': {'reference': 'Patient/p1'},
                          'outcome': 'queued',
                          'patient': {'reference': 'Patient/p1'},
                          'provider': {'reference': 'Patient/p1'},
                          'status': 'active',
                          'type': {'text': 'x'},
                          'use': 'claim'},
 'FamilyMemberHistory': {'patient': {'reference': 'Patient/p1'},
                         'relationship': {'text': 'x'},
                         'status': 'partial'},
 'Flag': {'code': {'text': 'x'}, 'status': 'active', 'subject': {'reference': 'Patient/p1'}},
 'Goal': {'description': {'text': 'x'}, 'lifecycleStatus': 'proposed', 'subject': {'reference': 'Patient/p1'}},
 'GraphDefinition': {'name': 'x', 'start': 'Patient', 'status': 'draft'},
 'Group': {'actual': True, 'type': 'person'},
 'GuidanceResponse': {'moduleCanonical': 'x', 'status': 'success'},
 'ImagingStudy': {'status': 'registered', 'subject': {'reference': 'Patient/p1'}},
 'Immunization': {'occurrenceDateTime': '2026-01-01',
                  'patient': {'reference': 'Patient/p1'},
                  'status': 'completed',
                  'vaccineCode': {'text': 'x'}},
 'ImmunizationEvaluation': {'doseStatus': {'text': 'x'},
                            'immunizationEvent': {'reference': 'Patient/p1'},
                            'patient': {'reference': 'Patient/p1'},
                            'status': 'completed',
                            'targetDisease': {'text': 'x'}},
 'ImmunizationRecommendation': {'date': '2026-01-01',
                                'patient': {'reference': 'Patient/p1'},
                                'recommendation': [{'forecastStatus': {'text': 'x'}}]},
 'ImplementationGuide': {'fhirVersion': ['4.0.1'], 'name': 'x', 'packageId': 'x', 'status': 'draft', 'url': 'x'},
 'Invoice': {'status': 'draft'},
 'Library': {'status': 'draft', 'type': {'text': 'x'}},
 'Linkage': {'item': [{'resource': {'reference': 'Patient/p1'}, 'type': 'source'}]},
 'List': {'mode': 'working', 'status': 'current'},
 'Measure': {'status': 'draft'},
 'MeasureReport': {'measure': 'x',
                   'period': {'start': '2026-01-01'},
                   'status': 'complete',
                   'type': 'individual'},
 'Media': {'content': {'contentType': 'text/plain'}, 'status': 'preparation'},
 'MedicationAdministration': {'effectiveDateTime': '2026-01-01',
                              'medicationCodeableConcept': {'text': 'x'},
                              'status': 'in-progress',
                              'subject': {'reference': 'Patient/p1'}},
 'MedicationDispense': {'medicationCodeableConcept': {'text': 'x'}, 'status': 'preparation'},
 'MedicationRequest': {'intent': 'proposal',
                       'medicationCodeableConcept': {'text': 'x'},
                       'status': 'active',
                       'subject': {'reference': 'Patient/p1'}},
 'MedicationStatement': {'medicationCodeableConcept': {'text': 'x'},
                         'status': 'active',
                         'subject': {'reference': 'Patient/p1'}},
 'MessageDefinition': {'date': '2026-01-01', 'eventCoding': {'code': 'x'}, 'status': 'draft'},
 'MessageHeader': {'eventCoding': {'code': 'x'}, 'source': {'endpoint': 'http://x'}},
 'MolecularSequence': {'coordinateSystem': 1},
 'NamingSystem': {'date': '2026-01-01',
                  'kind': 'codesystem',
                  'name': 'x',
                  'status': 'draft',
                  'uniqueId': [{'type': 'oid', 'value': 'x'}]},
 'NutritionOrder': {'dateTime': '2026-01-01',
                    'intent': 'proposal',
                    'patient': {'reference': 'Patient/p1'},
                    'status': 'draft'},
 'Observation': {'code': {'text': 'x'}, 'status': 'registered'},
 'ObservationDefinition': {'code': {'text': 'x'}},
 'OperationDefinition': {'code': 'x',
                         'instance': True,
                         'kind': 'operation',
                         'name': 'x',
                         'status': 'draft',
                         'system': True,
                         'type': True},
 'OperationOutcome': {'issue': [{'code': 'processing', 'severity': 'fatal'}]},
 'PaymentNotice': {'amount': {'value': 1},
                   'created': '2026-01-01',
                   'payment': {'reference': 'Patient/p1'},
                   'recipient': {'reference': 'Patient/p1'},
                   'status': 'active'},
 'PaymentReconciliation': {'created': '2026-01-01',
                           'paymentAmount': {'value': 1},
                           'paymentDate': '2026-01-01',
                           'status': 'active'},
 'PlanDefinition': {'status': 'draft'},
 'Procedure': {'status': 'preparation', 'subject': {'reference': 'Patient/p1'}},
 'Provenance': {'agent': [{'who': {'reference': 'Patient/p1'}}],
                'recorded': '2026-01-01T00:00:00Z',
                'target': [{'reference': 'Patient/p1'}]},
 'Questionnaire': {'status': 'draft'},
 'QuestionnaireResponse': {'status': 'in-progress'},
 'RelatedPerson': {'patient': {'reference': 'Patient/p1'}},
 'RequestGroup': {'intent': 'proposal', 'status': 'draft'},
 'ResearchDefinition': {'population': {'reference': 'Patient/p1'}, 'status': 'draft'},
 'ResearchElementDefinition': {'characteristic': [{'definitionCanonical': 'x'}],
                               'status': 'draft',
                               'type': 'population'},
 'ResearchStudy': {'status': 'active'},
 'ResearchSubject': {'individual': {'reference': 'Patient/p1'},
                     'status': 'candidate',
                     'study': {'reference': 'Patient/p1'}},
 'RiskAssessment': {'status': 'registered', 'subject': {'reference': 'Patient/p1'}},
 'Schedule': {'actor': [{'reference': 'Patient/p1'}]},
 'SearchParameter': {'base': ['Patient'],
                     'code': 'x',
                     'description': 'x',
                     'name': 'x',
                     'status': 'draft',
                     'type': 'number',
                     'url': 'x'},
 'ServiceRequest': {'intent': 'proposal', 'status': 'draft', 'subject': {'reference': 'Patient/p1'}},
 'Slot': {'end': '2026-01-01T10:30:00Z',
          'schedule': {'reference': 'Patient/p1'},
          'start': '2026-01-01T10:00:00Z',
          'status': 'busy'},
 'StructureDefinition': {'abstract': True,
                         'kind': 'primitive-type',
                         'name': 'x',
                         'status': 'draft',
                         'type': 'x',
                         'url': 'x'},
 'StructureMap': {'group': [{'input': [{'mode': 'source', 'name': 'x'}],
                             'name': 'x',
                             'rule': [{'name': 'x', 'source': [{'context': 'x'}]}],
                             'typeMode': 'none'}],
                  'name': 'x',
                  'status': 'draft',
                  'url': 'x'},
 'Subscription': {'channel': {'endpoint': 'http://127.0.0.1:9/hook',
                              'payload': 'application/fhir+json',
                              'type': 'rest-hook'},
                  'criteria': 'Observation?code=x',
                  'reason': 'x',
                  'status': 'requested'},
 'Substance': {'code': {'text': 'x'}},
 'SupplyRequest': {'itemCodeableConcept': {'text': 'x'}, 'quantity': {'value': 1}},
 'Task': {'intent': 'unknown', 'status': 'draft'},
 'TerminologyCapabilities': {'date': '2026-01-01', 'kind': 'instance', 'status': 'draft'},
 'TestReport': {'result': 'pass', 'status': 'completed', 'testScript': {'reference': 'Patient/p1'}},
 'TestScript': {'name': 'x', 'status': 'draft', 'url': 'x'},
 'ValueSet': {'status': 'draft'},
 'VerificationResult': {'status': 'attested'},
 'VisionPrescription': {'created': '2026-01-01',
                        'dateWritten': '2026-01-01',
                        'lensSpecification': [{'eye': 'right', 'product': {'text': 'x'}}],
                        'patient': {'reference': 'Patient/p1'},
                        'prescriber': {'reference': 'Patient/p1'},
                        'status': 'active'}}


def body(rtype: str) -> dict:
    return {"resourceType": rtype, **REQUIRED.get(rtype, {})}


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator:
    store = make_store("sqlite", tmp_path_factory.mktemp("claims"), durable=False)
    server = serve(store)
    assert server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code in (200, 201)
    yield server
    server.close()
    close_store(store)


@pytest.fixture(scope="module")
def statement(live) -> dict:
    cs = live.get("metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and len(cs["rest"][0]["resource"]) == 145
    return cs


def resources(statement: dict) -> list[dict]:
    return statement["rest"][0]["resource"]


def ok(response: requests.Response, *statuses: int) -> requests.Response:
    assert response.status_code in (statuses or (200,)), (response.request.method, response.url, response.text[:500])
    return response


def chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(values), size):
        yield values[i: i + size]


def test_every_type_is_searched_with_each_declared_parameter_include_and_revinclude(live, statement):
    for resource in resources(statement):
        rtype = resource["type"]
        assert {i["code"] for i in resource["interaction"]} >= {"read", "search-type", "create"}
        ok(live.http.post(live.url(f"{rtype}/_search"), data={"_count": "1"}, headers=STRICT))
        names = [p["name"] for p in resource["searchParam"]]
        assert {"_id", "_lastUpdated"} <= set(names)
        # Every declared parameter, include and revinclude, a few dozen to a request (strict: an unknown
        # one would be a 400).
        # Includes go at most RELAIS_SEARCH_MAX_INCLUDES to a request.
        pairs = [(f"{name}:missing", "false") for name in names]
        includes = [("_include", spec) for spec in resource["searchInclude"]]
        includes += [("_revinclude", spec) for spec in resource["searchRevInclude"]]
        for part in [*chunks(pairs), *chunks(includes, Config().search_max_includes)]:
            assert ok(live.get(rtype, params=part, headers=STRICT)).json()["type"] == "searchset"
        # Anything else is refused under strict handling.
        assert live.get(rtype, params={"not-a-parameter": "x"}, headers=STRICT).status_code == 400


def test_every_declared_interaction_of_every_type_is_tried(live, statement):
    for n, resource in enumerate(resources(statement)):
        rtype = resource["type"]
        codes = {i["code"] for i in resource["interaction"]}
        # On every type: create, read, search, patch, delete. On every eighth (one code path whatever
        # the type; each request costs ~10 ms here): vread, both histories, update and the conditional ones.
        whole = n % 8 == 0 or rtype == "AuditEvent"
        rid = ok(live.post(rtype, body(rtype)), 201).json()["id"]
        ok(live.get(f"{rtype}/{rid}"))
        found = ok(live.get(rtype, params={"_id": rid})).json()
        assert [e["resource"]["id"] for e in found["entry"]] == [rid]
        assert {"vread", "history-instance", "history-type"} <= codes and resource["readHistory"] is True
        assert resource["conditionalRead"] == "full-support" and resource["conditionalCreate"] is True
        if whole:
            ok(live.get(f"{rtype}/{rid}/_history/1"))
            ok(live.get(f"{rtype}/{rid}/_history"))
            ok(live.get(f"{rtype}/_history", params={"_count": "1"}))
            ok(live.get(f"{rtype}/{rid}", headers={"If-None-Match": 'W/"1"'}), 304)
            again = ok(live.post(rtype, body(rtype), headers={"If-None-Exist": f"_id={rid}"}), 200)
            assert again.json()["id"] == rid
        if not {"update", "patch", "delete"} & codes:
            # Append-only types (AuditEvent): not supported, whoever asks (R4: 405 Method Not Allowed).
            assert rtype == "AuditEvent"
            assert live.put(f"{rtype}/{rid}", {**body(rtype), "id": rid}).status_code == 405
            assert live.patch(f"{rtype}/{rid}", [{"op": "add", "path": "/language", "value": "fr"}]).status_code == 405
            assert live.delete(f"{rtype}/{rid}").status_code == 405
            assert resource["conditionalUpdate"] is False and resource["conditionalDelete"] == "not-supported"
            assert resource["updateCreate"] is False
            continue
        assert {"update", "patch", "delete"} <= codes and resource["versioning"] == "versioned-update"
        assert resource["updateCreate"] and resource["conditionalUpdate"] and resource["conditionalDelete"] == "single"
        if whole:
            ok(live.put(f"{rtype}/{rid}", {**body(rtype), "id": rid}, headers={"If-Match": 'W/"1"'}))
            stale = live.put(f"{rtype}/{rid}", {**body(rtype), "id": rid}, headers={"If-Match": 'W/"1"'})
            assert stale.status_code == 412
        patched = ok(live.patch(f"{rtype}/{rid}", [{"op": "add", "path": "/language", "value": "fr"}]))
        assert patched.json()["language"] == "fr"
        if whole:
            fresh = f"u{uuid.uuid4().hex[:12]}"
            ok(live.put(f"{rtype}/{fresh}", {**body(rtype), "id": fresh}), 201)
            ok(live.put(f"{rtype}?_id={fresh}", {**body(rtype), "id": fresh}))
            ok(live.delete(f"{rtype}?_id={rid}"), 200, 204)
            assert live.get(f"{rtype}/{rid}").status_code == 410
        else:
            ok(live.delete(f"{rtype}/{rid}"), 200, 204)


def _invoke(live, level: str, rtype: str | None, name: str, definition: str) -> None:
    """Invoke one declared operation as its definition says it is called."""
    async_ = {"Prefer": "respond-async"}
    if name == "validate":
        outcome = ok(live.post(f"{rtype}/$validate", body(rtype))).json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert definition == "http://hl7.org/fhir/OperationDefinition/Resource-validate"
    elif (level, rtype, name) == ("type", "Patient", "everything"):
        bundle = ok(live.get("Patient/p1/$everything")).json()
        assert ("Patient", "p1") in {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    elif (level, rtype, name) == ("type", "Task", "worklist"):
        assert ok(live.get("Task/$worklist")).json()["type"] == "searchset"
    elif (level, rtype, name) == ("type", "Patient", "export"):
        ok(live.get("Patient/$export", headers=async_), 202)
    elif (level, rtype, name) == ("type", "Group", "export"):
        group = ok(live.post("Group", {"resourceType": "Group", "type": "person", "actual": True}), 201).json()
        ok(live.get(f"Group/{group['id']}/$export", headers=async_), 202)
    elif (level, name) == ("system", "export"):
        ok(live.get("$export", headers=async_), 202)
    elif (level, name) == ("system", "reindex"):
        ok(live.post("$reindex?_type=Patient"), 200, 202)
    elif (level, name) == ("system", "pre-dmp"):  # an instance operation of Patient (predmp/)
        draft = ok(live.post("Patient/p1/$pre-dmp"), 201).json()
        assert draft["resourceType"] == "DocumentReference" and draft["docStatus"] == "preliminary"
    elif (level, name) == ("system", "validate-pre-dmp"):  # of DocumentReference; a practitioner's only
        draft = ok(live.post("Patient/p1/$pre-dmp"), 201).json()
        refused = ok(live.post(f"DocumentReference/{draft['id']}/$validate-pre-dmp"), 403).json()
        assert "professionnel de santé" in refused["issue"][0]["diagnostics"]
    else:
        pytest.fail(f"the test does not know how to invoke the declared operation {name} ({level} {rtype})")


def test_every_declared_operation_is_invoked(live, statement):
    rest = statement["rest"][0]
    invoked = 0
    on_types = {op["definition"] for r in resources(statement) for op in r.get("operation", [])}
    for op in rest.get("operation", []):
        assert op["definition"].startswith("http"), op
        if op["definition"] in on_types:
            continue  # rest.operation lists every operation: those of types are invoked there, below
        _invoke(live, "system", None, op["name"], op["definition"])
        invoked += 1
    for resource in resources(statement):
        for op in resource.get("operation", []):
            assert op["definition"].startswith("http"), op
            _invoke(live, "type", resource["type"], op["name"], op["definition"])
            invoked += 1
    names = {op["name"] for op in rest.get("operation", [])}
    patient = next(r for r in resources(statement) if r["type"] == "Patient")
    assert {"export", "reindex", "validate", "everything"} <= names
    assert {o["name"] for o in patient["operation"]} == {"validate", "everything", "export"}
    assert invoked >= 145 + 4


def test_system_interactions_and_what_is_not_declared(live, statement):
    rest = statement["rest"][0]
    codes = {i["code"] for i in rest["interaction"]}
    assert codes == {"history-system", "search-system", "batch", "transaction"}
    ok(live.get("_history"))
    ok(live.get("", params={"_type": "Patient,Observation"}))
    for kind in ("batch", "transaction"):
        answer = ok(live.post("", {"resourceType": "Bundle", "type": kind, "entry": [
            {"request": {"method": "GET", "url": "Patient/p1"}}]})).json()
        assert answer["type"] == f"{kind}-response"
    for name in (p["name"] for p in rest["searchParam"]):
        ok(live.get("", params={"_type": "Patient,Observation", f"{name}:missing": "false"}, headers=STRICT))
    assert rest["compartment"] == ["http://hl7.org/fhir/CompartmentDefinition/patient"]
    ok(live.get("Patient/p1/Observation"))
    # Not declared: not answered.
    assert live.get("Citation").status_code == 404
    assert live.post("Citation", {"resourceType": "Citation", "status": "draft"}).status_code == 404
    assert live.get("Patient/p1/$no-such-operation").status_code == 404
    assert live.get("Patient/$no-such-operation").status_code == 404
    assert live.post("Patient/$no-such-operation", {"resourceType": "Parameters"}).status_code in (404, 405)
    assert live.post("$no-such-operation", {"resourceType": "Parameters"}).status_code == 404
    assert live.post("Patient/p1/_history", {"resourceType": "Patient"}).status_code == 405
    for method in ("POST", "PUT", "DELETE"):
        assert live.http.request(method, live.url("metadata"), json={}).status_code == 405


def test_the_openapi_description_is_generated_from_the_statement(live, statement):
    from openapi_spec_validator import validate

    response = ok(live.get("openapi.json", headers={"Accept": "application/json"}))
    document = response.json()
    # The validator takes half a minute on the whole document (1.4 MB): it checks the same generator's
    # output for a statement cut to a few types, with and without security, each kind of operation.
    few = [r for r in resources(statement) if r["type"] in ("Patient", "Group", "AuditEvent", "Observation")]
    small = {**statement, "rest": [{**statement["rest"][0], "resource": few}]}
    validate(openapi_document(small))
    secured = {**small, "rest": [{**small["rest"][0], "security": {"extension": [{"extension": [
        {"url": "token", "valueUri": "http://127.0.0.1/auth/token"}]}]}}]}
    assert openapi_document(secured)["security"] == [{"smart": []}]
    validate(openapi_document(secured))
    assert document["openapi"].startswith("3.") and document == openapi_document(statement)
    paths = document["paths"]
    for resource in resources(statement):
        rtype = resource["type"]
        codes = {i["code"] for i in resource["interaction"]}
        assert ("get" in paths[f"/{rtype}"]) == ("search-type" in codes)
        assert ("put" in paths[f"/{rtype}/{{id}}"]) == ("update" in codes), rtype
        assert ("delete" in paths[f"/{rtype}/{{id}}"]) == ("delete" in codes), rtype
        query = {p["name"] for p in paths[f"/{rtype}"]["get"]["parameters"] if "name" in p}
        assert query == {p["name"] for p in resource["searchParam"]}
        for op in resource.get("operation", []):
            assert any(path.endswith(f"/${op['name']}") and path.startswith(f"/{rtype}") for path in paths), op
    assert "post" in paths["/$reindex"] and "get" in paths["/$export"] and "get" in paths["/Patient/{id}/$everything"]
    assert "get" in paths["/"] and "post" in paths["/"] and "/Patient/{id}/{type}" in paths
    audit = paths["/AuditEvent/{id}"]
    assert "get" in audit and not {"put", "patch", "delete"} & set(audit)
    # A PATCH takes each declared patch format, and no other.
    patch_body = paths["/Patient/{id}"]["patch"]["requestBody"]["content"]
    assert list(patch_body) == statement["patchFormat"]
    # Nothing outside the FHIR base (/health, /metrics are not FHIR endpoints) and no method the server lacks.
    assert document["servers"] == [{"url": statement["implementation"]["url"]}]
    assert all(path.startswith("/") and not path.startswith(("/health", "/metrics")) for path in paths)


def test_the_smart_configuration_claims_are_exercised(sqlite_store):
    live = AuthServer(sqlite_store)
    try:
        conf = ok(requests.get(live.url(".well-known/smart-configuration"))).json()
        # No authorization endpoint (client_credentials only): no response type either.
        assert conf["response_types_supported"] == [] and "authorization_endpoint" not in conf
        assert conf["grant_types_supported"] == ["client_credentials"]
        refused = requests.post(conf["token_endpoint"], data={"grant_type": "authorization_code", "code": "x"})
        assert refused.status_code in (400, 401)
        keys = ok(requests.get(conf["jwks_uri"])).json()["keys"]
        # Each signing algorithm, with private_key_jwt.
        algorithms = {"RS384": rsa_key, "ES384": ec_key}
        assert set(conf["token_endpoint_auth_signing_alg_values_supported"]) == set(algorithms)
        for make in algorithms.values():
            client_id, key = live.add_client("system/*.rs", key=make())
            assert live.token_response(client_id, key).status_code == 200
        assert keys
        # Each authentication method.
        assert set(conf["token_endpoint_auth_methods_supported"]) == {"private_key_jwt", "client_secret_basic"}
        client, secret = live.clients.add(name="dev", scopes=["system/*.rs"], secret=True)
        token = ok(requests.post(conf["token_endpoint"], data={"grant_type": "client_credentials"},
                                 auth=(client.client_id, secret))).json()["access_token"]
        # Introspection, then revocation.
        active = ok(requests.post(conf["introspection_endpoint"], data={"token": token},
                                  auth=(client.client_id, secret))).json()
        assert active["active"] is True
        ok(requests.post(conf["revocation_endpoint"], data={"token": token}, auth=(client.client_id, secret)))
        after = ok(requests.post(conf["introspection_endpoint"], data={"token": token},
                                 auth=(client.client_id, secret))).json()
        assert after["active"] is False
        # Each example scope is granted and works (patient/ ones with a patient in context).
        admin = live.client_token("system/*.cruds")
        live.request("PUT", "Patient/p1", admin, json={"resourceType": "Patient", "id": "p1"})
        for scope in conf["scopes_supported"]:
            extra = {"patient": "p1"} if scope.startswith("patient/") else {}
            client_id, key = live.add_client(scope, **extra)
            granted = ok(live.token_response(client_id, key, scope=scope)).json()
            assert granted["scope"] == scope
            if scope.endswith(".write"):
                tried = live.request("POST", "Patient", granted["access_token"], json={"resourceType": "Patient"})
                assert tried.status_code == 201, scope
            else:
                assert live.request("GET", "Patient/p1", granted["access_token"]).status_code == 200, scope
        assert {"permission-v1", "permission-v2", "permission-patient"} <= set(conf["capabilities"])
        # SMART App Launch 2.x, for a backend-services server: each capability declared is one exercised
        # above (private_key_jwt, client_secret_basic, v1 and v2 scopes, patient/ and user/ scopes granted);
        # nothing of an authorization endpoint (launch, public clients, PKCE, OpenID Connect) is claimed.
        methods = conf["token_endpoint_auth_methods_supported"]
        exercised = {"client-confidential-asymmetric": "private_key_jwt" in methods,
                     "client-confidential-symmetric": "client_secret_basic" in methods,
                     "permission-v1": any(s.endswith((".read", ".write")) for s in conf["scopes_supported"]),
                     "permission-v2": any(s.endswith(".rs") for s in conf["scopes_supported"]),
                     "permission-patient": any(s.startswith("patient/") for s in conf["scopes_supported"]),
                     "permission-user": any(s.startswith("user/") for s in conf["scopes_supported"])}
        assert set(conf["capabilities"]) == set(exercised) and all(exercised.values()), exercised
        assert not {"code_challenge_methods_supported", "registration_endpoint", "management_endpoint",
                    "authorization_endpoint", "userinfo_endpoint"} & set(conf)
        assert conf["issuer"] + "/token" == conf["token_endpoint"]
        # The API description is public, as the CapabilityStatement is, and names the token endpoint.
        described = ok(requests.get(live.url("openapi.json"))).json()
        flow = described["components"]["securitySchemes"]["smart"]["flows"]["clientCredentials"]
        assert flow["tokenUrl"] == conf["token_endpoint"] and described["security"] == [{"smart": []}]
    finally:
        live.close()


# A patch of each format the statement may declare: (Content-Type, body) setting Patient.language.
PATCHES: dict[str, object] = {
    "application/json-patch+json": [{"op": "add", "path": "/language", "value": "fr"}],
    "application/merge-patch+json": {"language": "de"},
    "application/fhir+json": {"resourceType": "Parameters", "parameter": [{"name": "operation", "part": [
        {"name": "type", "valueCode": "replace"}, {"name": "path", "valueString": "Patient.language"},
        {"name": "value", "valueCode": "nl"}]}]},
}


def test_every_declared_format_and_patch_format_is_served_and_xml_is_not(live, statement):
    pid = ok(live.post("Patient", {"resourceType": "Patient", "language": "en"}), 201).json()["id"]
    assert set(statement["patchFormat"]) == set(PATCHES)  # each format the server takes, and only those
    for media in statement["patchFormat"]:
        document = PATCHES[media]
        expected = (document[0]["value"] if isinstance(document, list) else document.get("language")
                    or document["parameter"][0]["part"][2]["valueCode"])
        patched = ok(live.http.patch(live.url(f"Patient/{pid}"), json=document, headers={"Content-Type": media}))
        assert patched.json()["language"] == expected, media
        assert ok(live.get(f"Patient/{pid}")).json()["language"] == expected, media
    # Each declared format, as _format and as Accept (a MIME type) or _format alone (a short code).
    assert statement["format"] == ["application/fhir+json", "json"]
    for fmt in statement["format"]:
        read = ok(live.get(f"Patient/{pid}", params={"_format": fmt}))
        assert read.headers["Content-Type"].startswith("application/fhir+json") and read.json()["id"] == pid
        if "/" in fmt:
            ok(live.http.get(live.url(f"Patient/{pid}"), headers={"Accept": fmt}))
    # Not declared: XML, asked for (406) or sent (415), answered with an OperationOutcome.
    xml_body = '<Patient xmlns="http://hl7.org/fhir"/>'
    for accept in ("application/fhir+xml", "application/xml"):
        refused = live.http.get(live.url(f"Patient/{pid}"), headers={"Accept": accept})
        assert refused.status_code == 406 and refused.json()["resourceType"] == "OperationOutcome", accept
    for fmt in ("xml", "application/fhir+xml"):
        assert live.get(f"Patient/{pid}", params={"_format": fmt}).status_code == 406, fmt
    for media in ("application/fhir+xml", "application/xml", "application/xml-patch+xml"):
        sent = live.http.post(live.url("Patient"), data=xml_body, headers={"Content-Type": media})
        assert sent.status_code == 415 and sent.json()["resourceType"] == "OperationOutcome", media
        patch = live.http.patch(live.url(f"Patient/{pid}"), data=xml_body, headers={"Content-Type": media})
        assert patch.status_code == 415, media
    assert ok(live.get(f"Patient/{pid}")).json()["language"] == expected
