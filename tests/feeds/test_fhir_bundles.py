"""Vendors who already speak FHIR: ANS "Mesures de santé" transaction Bundles (an Observation plus its PHD Device)
and a teleconsultation as a transaction Bundle, through plain REST. On SQLite: a MongoDB without a replica set
(mongomock) has no transactions, and the server refuses them there (400) rather than half-apply one."""

from __future__ import annotations

import base64
import uuid

import pytest

from fhir_server import codes

MESURES = "https://interop.esante.gouv.fr/ig/fhir/mesures/StructureDefinition"
PHD_DEVICE = "http://hl7.org/fhir/uv/phd/StructureDefinition/PhdDevice"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INS = "279035121518989"
VITAL_SIGNS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs"}]}]


def quantity(value, unit: str, code: str) -> dict:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


# (profile, code(s), value part): one Observation of each "Mesures de santé" profile the issue names
MEASURES = [
    ("mesures-fr-observation-bp", ["85354-9"], {"component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": quantity(142, "mmHg", "mm[Hg]")},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": quantity(88, "mmHg", "mm[Hg]")},
    ]}),
    ("mesures-fr-observation-body-weight", ["29463-7"], {"valueQuantity": quantity(71, "kg", "kg")}),
    ("mesures-fr-observation-heartrate", ["8867-4"], {"valueQuantity": quantity(64, "/min", "/min")}),
    ("mesures-fr-observation-oxygen-sat", ["2708-6", "59408-5"], {"valueQuantity": quantity(95, "%", "%")}),
    ("mesures-fr-observation-body-temperature", ["8310-5"], {"valueQuantity": quantity(37.8, "°C", "Cel")}),
    ("mesures-observation-glucose", ["2339-0"], {"valueQuantity": quantity(108, "mg/dL", "mg/dL")}),
    ("mesures-observation-steps-by-day", ["41950-7"], {"valueQuantity": quantity(5234, "pas", "/d")}),
]


def phd_device(serial: str) -> dict:
    return {"resourceType": "Device", "meta": {"profile": [PHD_DEVICE]},
            "identifier": [{"type": {"coding": [{
                "system": "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers", "code": "SYSID"}]},
                "system": "urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680", "value": serial}],
            "manufacturer": "OMRONHEALTHCARE", "modelNumber": "HEM-9200T",
            "deviceName": [{"name": "Mon tensiomètre", "type": "patient-reported-name"}],
            "type": {"coding": [{"system": "urn:iso:std:iso:11073:10101", "code": "65573"}]}}


def mesures_bundle(profile: str, loinc: list[str], value: dict, subject: str, serial: str) -> dict:
    """A ``mesures-bundle-flux-alimentation``: transaction, the PHD Device then the Observation, both POST."""
    device_url = f"urn:uuid:{uuid.uuid4()}"
    observation = {"resourceType": "Observation", "meta": {"profile": [f"{MESURES}/{profile}"]}, "status": "final",
                   "category": VITAL_SIGNS, "code": {"coding": [{"system": LOINC, "code": c} for c in loinc]},
                   "subject": {"reference": subject}, "effectiveDateTime": "2026-12-01T07:42:00+01:00",
                   "device": {"reference": device_url}, **value}
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": device_url, "resource": phd_device(serial),
         "request": {"method": "POST", "url": "Device",
                     "ifNoneExist": f"identifier=urn:oid:1.2.840.10004.1.1.1.0.0.1.0.0.1.2680|{serial}"}},
        {"fullUrl": f"urn:uuid:{uuid.uuid4()}", "resource": observation,
         "request": {"method": "POST", "url": "Observation"}},
    ]}


@pytest.fixture
def server(sqlite_server):
    return sqlite_server


@pytest.fixture
def patient_id(server) -> str:
    created = server.post("Patient", {"resourceType": "Patient", "identifier": [
        {"system": codes.INS_NIR, "value": INS}], "name": [{"family": "Lefèvre", "given": ["Jeanne"]}]})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def test_each_mesures_de_sante_bundle_is_stored_with_its_device(server, patient_id):
    for profile, loinc, value in MEASURES:
        # the IG's subjects are found by INS: a conditional reference resolves it
        bundle = mesures_bundle(profile, loinc, value, f"Patient?identifier={codes.INS_NIR}|{INS}", "FE-ED-AB-AA")
        answer = server.post("", bundle)
        assert answer.status_code == 200, (profile, answer.text)
        statuses = [e["response"]["status"] for e in answer.json()["entry"]]
        assert statuses[1].startswith("201"), statuses
    devices = server.get("Device").json()
    assert devices["total"] == 1  # ifNoneExist on the PHD identifier: one Device for the seven measures
    device_id = devices["entry"][0]["resource"]["id"]
    for profile, loinc, _ in MEASURES:
        found = server.get(f"Observation?code={LOINC}|{loinc[-1]}&subject=Patient/{patient_id}").json()
        assert found["total"] == 1, profile
        observation = found["entry"][0]["resource"]
        assert observation["device"] == {"reference": f"Device/{device_id}"}
        assert observation["meta"]["profile"] == [f"{MESURES}/{profile}"]
    systolic = server.get(f"Observation?component-code-value-quantity={LOINC}|8480-6$gt140").json()
    assert systolic["total"] == 1


def test_a_batch_of_measures_in_one_transaction(server, patient_id):
    entries = []
    for profile, loinc, value in MEASURES:
        entries += mesures_bundle(profile, loinc, value, f"Patient/{patient_id}", f"SN-{profile}")["entry"]
    answer = server.post("", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
    assert answer.status_code == 200, answer.text
    assert server.get("Observation?_summary=count").json()["total"] == len(MEASURES)
    assert server.get("Device?_summary=count").json()["total"] == len(MEASURES)


def test_a_teleconsultation_as_a_transaction_bundle(server, patient_id):
    encounter_url, doctor_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    subject = {"reference": f"Patient/{patient_id}"}
    visit = {"reference": encounter_url}
    author = {"reference": doctor_url}
    report = "Patiente de 78 ans, dyspnée d'effort..."
    resources = [
        (doctor_url, {"resourceType": "Practitioner", "identifier": [{"system": codes.RPPS, "value": "10101234567"}],
                      "name": [{"family": "Durand", "given": ["Claire"]}]}, f"identifier={codes.RPPS}|10101234567"),
        (encounter_url, {"resourceType": "Encounter", "status": "finished",
                         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "VR"},
                         "subject": subject, "participant": [{"individual": author}],
                         "period": {"start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T10:20:00+01:00"},
                         "reasonCode": [{"text": "Essoufflement depuis trois jours"}]}, None),
        (None, {"resourceType": "Condition", "subject": subject, "encounter": visit,
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                          "code": "encounter-diagnosis"}]}],
                "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I50.9"}]}}, None),
        (None, {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": subject,
                "encounter": visit, "requester": author,
                "medicationCodeableConcept": {"coding": [{"system": "http://www.whocc.no/atc", "code": "C03CA01"}]},
                "dosageInstruction": [{"text": "1 comprimé le matin pendant 7 jours"}]}, None),
        (None, {"resourceType": "DocumentReference", "status": "current", "subject": subject, "author": [author],
                "content": [{"attachment": {"contentType": "text/plain; charset=utf-8",
                                            "data": base64.b64encode(report.encode()).decode()}}],
                "context": {"encounter": [visit]}}, None),
    ]
    entries = []
    for full_url, resource, if_none_exist in resources:
        request = {"method": "POST", "url": resource["resourceType"]}
        if if_none_exist:
            request["ifNoneExist"] = if_none_exist
        entries.append({"fullUrl": full_url or f"urn:uuid:{uuid.uuid4()}", "resource": resource, "request": request})
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": entries}
    for _ in range(2):  # the second time, the Practitioner is found by RPPS
        answer = server.post("", bundle)
        assert answer.status_code == 200, answer.text
    assert server.get("Practitioner?_summary=count").json()["total"] == 1
    encounters = server.get(f"Encounter?subject=Patient/{patient_id}&class=VR").json()
    assert encounters["total"] == 2
    encounter_id = encounters["entry"][0]["resource"]["id"]
    linked = server.get(f"Condition?encounter=Encounter/{encounter_id}").json()
    assert linked["total"] == 1
