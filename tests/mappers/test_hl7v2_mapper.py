"""The HL7 v2 mapper as a pure function, on the shared samples as they are and on one-case messages."""

from __future__ import annotations

import pytest

from fhir_server.resources import validate
from mappers.hl7v2 import er7, map_message
from mappers.hl7v2.obx import observation
from mappers.hl7v2.problems import Problem
from tests.mappers.hl7v2_samples import (
    INS_NIR,
    LINUXFORHEALTH_ADT,
    ORU,
    PAM,
    PYTHON_HL7,
    ack_fields,
    lab_result,
    read,
)

BAD = [p for p in PYTHON_HL7 if p.name != "sample_msh.hl7"] + LINUXFORHEALTH_ADT


def _resources(mapped, rtype: str) -> list[dict]:
    return [c.resource for c in mapped.changes if c.resource_type == rtype]


@pytest.mark.parametrize("path", PAM, ids=lambda p: p.name)
def test_every_pam_sample_is_a_valid_patient_and_encounter_with_the_ins(path):
    mapped = map_message(read(path).decode("utf-8"))
    assert mapped.problem is None and mapped.code == "AA"
    [patient] = _resources(mapped, "Patient")
    [encounter] = _resources(mapped, "Encounter")
    for change in mapped.changes:
        validate(change.resource, change.resource_type)  # the R4B models agree with the mapper's own check
        assert change.validated
    ins = [i for i in patient["identifier"] if i.get("system") == INS_NIR]
    assert ins == [{"type": {"text": "INS"}, "system": INS_NIR, "value": "279035121518989",
                    "assigner": {"display": "ASIP-SANTE-INS-NIR"}}]
    local = patient["identifier"][0]
    assert (local["system"], local["value"], local["type"]["coding"][0]["code"]) == ("urn:relais:hl7v2:CHU-X",
                                                                                     "000003", "PI")
    assert patient["name"] == [{"use": "official", "family": "PAT-TROIS", "given": ["DOMINIQUE", "DOMINIQUE"]}]
    assert (patient["birthDate"], patient["gender"]) == ("1979-03-28", "female")
    assert patient["address"] == [{"use": "home", "line": ["28 Av de Breteuil"], "city": "PARIS",
                                   "postalCode": "75007", "country": "FRA"}]
    assert patient["extension"][0]["valueAddress"] == {"district": "63220"}  # BDL: the birth place
    # the Patient is found again by the sender's own id, the Encounter by its visit number
    patient_change = mapped.changes[0]
    assert patient_change.action == "update" and patient_change.condition is not None
    assert encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert encounter["class"]["code"] == "IMP"
    assert encounter["identifier"][0]["type"]["coding"][0]["code"] == "VN"
    expected = "finished" if "A03" in read(path).decode() else "in-progress"
    assert encounter["status"] == expected


def test_admission_then_discharge_name_the_same_patient_and_encounter():
    admission, discharge = (map_message(read(p).decode()) for p in PAM if p.name in ("admission.er7", "sortie.er7"))
    # the admission's ZFA adds its two DMP Consents after the Patient and the Encounter
    assert [c.id for c in admission.changes[:2]] == [c.id for c in discharge.changes]
    assert _resources(discharge, "Encounter")[0]["period"] == {"end": "2024-03-06T11:11:54+01:00"}  # EVN-6, Paris time


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n"], ids=["CR", "LF", "CRLF"])
def test_segment_separators(separator):
    text = separator.join(er7.segments_of(read(PAM[0]).decode()))
    mapped = map_message(text)
    assert mapped.code == "AA"
    assert [c.resource for c in mapped.changes] == [c.resource for c in map_message(read(PAM[0]).decode()).changes]


@pytest.mark.parametrize("path", ORU, ids=lambda p: p.name)
def test_oru_samples_give_one_observation_per_obx(path):
    text = read(path).decode()
    mapped = map_message(text)
    assert mapped.code == "AA", mapped.problem and mapped.problem.as_dict()
    observations = _resources(mapped, "Observation")
    assert len(observations) == text.count("\nOBX|")
    patient = _resources(mapped, "Patient")[0]
    for obs in observations:
        validate(obs, "Observation")
        assert obs["subject"] == {"reference": f"Patient/{patient['id']}"}
        assert obs["status"] == "final" and obs["effectiveDateTime"] == "2020-08-02T12:44:55+02:00"
    texts = [o.get("valueString") for o in observations]
    assert "[PII] Emergency Department" in texts
    # an OBX without OBX-3 is coded by its order (OBR-4)
    assert observations[-1]["code"]["coding"][0] == {"code": "1487", "display": "ECHO CARDIOGRAM COMPLETE"}


def test_python_hl7_glucose_result_value_units_range_and_flag():
    """sample_hl7.hl7 as it is: OBX 1 is SN ^182 mg/dl, range 70_105, flag H; OBX 2's type FN is not mapped."""
    message = er7.read(read(next(p for p in PYTHON_HL7 if p.name == "sample_hl7.hl7")).decode())
    first, second = er7.segments(message, "OBX")
    obs = observation(first, 1, "Patient/x", None, None, None)
    assert obs["valueQuantity"] == {"value": 182, "unit": "mg/dl"}
    assert obs["referenceRange"] == [{"text": "70_105"}]
    assert obs["interpretation"][0]["coding"][0]["code"] == "H"
    assert obs["code"]["coding"][0]["code"] == "1554-5"
    validate(obs, "Observation")
    with pytest.raises(Problem) as refused:
        observation(second, 2, "Patient/x", None, None, None)
    assert (refused.value.code, refused.value.location) == (102, "OBX^2^2")


def test_numeric_result_with_ucum_units_loinc_code_range_flag_and_time():
    mapped = map_message(lab_result())
    assert mapped.code == "AA"
    [obs] = _resources(mapped, "Observation")
    assert obs["code"]["coding"] == [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]
    assert obs["valueQuantity"] == {"value": 5.4, "unit": "mmol/L", "system": "http://unitsofmeasure.org",
                                    "code": "mmol/L"}
    assert obs["referenceRange"][0]["low"]["value"] == 3.9 and obs["referenceRange"][0]["high"]["value"] == 6.1
    assert obs["interpretation"][0]["coding"][0]["code"] == "N"
    assert obs["effectiveDateTime"] == "2026-11-20T08:00:00+01:00"
    patient = _resources(mapped, "Patient")[0]
    assert {"system": "urn:oid:1.2.250.1.999.1", "value": "P12345"}.items() <= patient["identifier"][0].items()


@pytest.mark.parametrize("obx, expected", [
    ("OBX|1|SN|1988-5^CRP^LN||<^5|mg/L^mg/L^UCUM|||||F",
     {"valueQuantity": {"value": 5, "comparator": "<", "unit": "mg/L", "system": "http://unitsofmeasure.org",
                        "code": "mg/L"}}),
    ("OBX|1|SN|1988-5^CRP^LN||^10^-^20|mg/L|||||F",
     {"valueRange": {"low": {"value": 10, "unit": "mg/L"}, "high": {"value": 20, "unit": "mg/L"}}}),
    ("OBX|1|SN|5334-2^Titer^LN||^1^:^128||||||F",
     {"valueRatio": {"numerator": {"value": 1}, "denominator": {"value": 128}}}),
    ("OBX|1|CWE|882-1^ABO+Rh^LN||A+^A Rh positive^SCT||||||F",
     {"valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "A+",
                                           "display": "A Rh positive"}], "text": "A Rh positive"}}),
    ("OBX|1|TX|11526-1^Note^LN||line one~line \\T\\ two||||||F", {"valueString": "line one\nline & two"}),
])
def test_value_types(obx, expected):
    mapped = map_message(lab_result(obx=obx))
    assert mapped.code == "AA", mapped.problem and mapped.problem.as_dict()
    [obs] = _resources(mapped, "Observation")
    assert {k: obs[k] for k in expected} == expected


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_every_bad_sample_gets_ar_or_ae_with_an_err_segment(path):
    mapped = map_message(read(path).decode("utf-8", "replace"))
    assert mapped.code in ("AE", "AR") and not mapped.changes
    ack = ack_fields(mapped.ack(ack_id="T1"))
    assert ack["code"] == mapped.code
    assert ack["err"], "an ACK other than AA carries an ERR segment"


def test_ack_swaps_sender_and_receiver_and_echoes_the_control_id():
    mapped = map_message(read(PAM[0]).decode())
    ack = ack_fields(mapped.ack(ack_id="A1"))
    assert ack == {"code": "AA", "control_id": "3975", "err": None, "sending": "DPI", "receiving": "GAM",
                   "type": "ACK^A01^ACK"}


def test_a_batch_is_refused_but_its_ack_answers_its_first_message():
    mapped = map_message(read(next(p for p in PYTHON_HL7 if p.name == "sample_batch.hl7")).decode())
    ack = ack_fields(mapped.ack(ack_id="B1"))
    assert (ack["code"], ack["control_id"]) == ("AR", "12334456778890")
    assert "100^Segment sequence error" in ack["err"]


@pytest.mark.parametrize("change, code, ack", [
    (("ORU^R01^ORU_R01", "MFN^M02^MFN_M02"), "200", "AR"),  # SIU, once the example, is mapped since issue 15
    (("ORU^R01^ORU_R01", "ADT^A60^ADT_A60"), "201", "AR"),  # A40 is mapped since issue 15
    (("|P|2.5", "|P|3.0"), "203", "AR"),
    (("|LAB0001|", "||"), "101", "AR"),
    (("2345-7^Glucose^LN", "23  45^Glucose^LN"), "207", "AE"),  # an invalid FHIR code: the R4B model refuses it
    (("||5.4|", "||five|"), "102", "AE"),
    (("|19550412|", "|19551341|"), "102", "AE"),
])
def test_problems_are_acks_with_their_hl7_error_code(change, code, ack):
    mapped = map_message(lab_result().replace(*change))
    assert mapped.code == ack and not mapped.changes
    fields = ack_fields(mapped.ack(ack_id="P1"))
    assert fields["code"] == ack
    assert f"|{code}^" in fields["err"]


@pytest.mark.parametrize("text", ["", "hello", "\x00\x01\x02", "MSH", "MSH|", "PID|1||x", "MSH|^~\\&|" + "|" * 500,
                                  "MSH|^~\\&|A|B|C|D|x||ADT^A01|1|P|2.5\rPID|" + "^" * 10000])
def test_garbage_never_raises(text):
    mapped = map_message(text)
    assert mapped.code in ("AE", "AR")
    assert ack_fields(mapped.ack(ack_id="G1"))["err"]


def test_a_v23_admission_with_explicit_nulls():
    """sample_msh.hl7 as it is: HL7 2.3, two PID-3 ids without an OID, \"\" (null) in PV1-45."""
    mapped = map_message(read(next(p for p in PYTHON_HL7 if p.name == "sample_msh.hl7")).decode())
    assert mapped.code == "AA", mapped.problem and mapped.problem.as_dict()
    [patient] = _resources(mapped, "Patient")
    assert [(i["system"], i["value"]) for i in patient["identifier"]] == [
        ("urn:relais:hl7v2:MSH_MRN", "2148790"), ("urn:relais:hl7v2:MSH_EMPI", "162840")]
    [encounter] = _resources(mapped, "Encounter")
    assert encounter["status"] == "in-progress" and "end" not in encounter["period"]
    assert ack_fields(mapped.ack(ack_id="V23"))["code"] == "AA"


_MSH = "MSH|^~\\&|LABSYS|LAB-Y|RELAIS|HUB|20261120081500||ORU^R01^ORU_R01|LAB0001|P|2.5"
_MSH_VARIANTS = [
    ("LABSYS", "LAB^^"), ("LAB-Y", "^1.2.3^ISO"), ("LAB-Y", "FAC^^ISO^"), ("|P|2.5", "|P^T|2.5.1^FRA^"),
    ("|2.5", "|2.9"), ("|2.5", "|"), ("LAB0001", "  X "), ("LAB0001", ""), ("ORU^R01^ORU_R01", "ORU"),
    ("ORU^R01^ORU_R01", "ORU^ R01"), ("|P|", "||"), ("LABSYS", "A&B"), ("LABSYS", "L\\F\\X"), ("LAB0001", "L1 L2"),
    ("LABSYS", " LAB"), ("LABSYS", "LAB SYS^x y"), ("|P|", "|P^^|"), ("RELAIS|HUB", "|"), ("LAB0001", "ÉÀ1"),
    ("LAB0001", "A~B"), ("LAB0001", '""'), ("^~\\&", "^~\\&#"), ("|2.5", "|2.5|||||"),
]


@pytest.mark.parametrize("text", [read(p).decode("utf-8", "replace") for p in PAM + ORU + PYTHON_HL7 +
                                  LINUXFORHEALTH_ADT] + [_MSH.replace(*v) for v in _MSH_VARIANTS])
def test_the_quick_msh_reading_is_hl7apys(text):
    """The feed keys a message by its MSH before mapping it, read by a split that must agree with hl7apy."""
    assert er7.msh_header(text) == er7.first_header(text)
