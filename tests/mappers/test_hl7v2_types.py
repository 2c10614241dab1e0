"""The mappers of the care message types beyond ADT, as pure functions: CI-SIS ORU and MDM documents (PRT,
ED, RP, MetaDMPMSS), DiagnosticReport, orders, referrals, vaccinations, pharmacy, problems, appointments."""

from __future__ import annotations

import base64

import pytest

from fhir_server import write
from fhir_server.codes import FINESS, IDNPS, IDNST, RPPS
from fhir_server.resources import validate
from mappers.hl7v2 import map_message, preadopted
from mappers.hl7v2.er7 import Unreadable
from mappers.hl7v2.mapper import MESSAGE_TYPES
from tests.mappers import hl7v2_care_samples as care
from tests.mappers.hl7v2_samples import HL7V2, ORU, lab_result, read

CISIS = HL7V2 / "ans-cisis"
DOCUMENT_SAMPLES = sorted(p for p in CISIS.iterdir() if "ack" not in p.name)


def _sample(name: str) -> str:
    return (CISIS / name).read_text(encoding="utf-8")


def _resources(mapped, rtype: str) -> list[dict]:
    return [c.resource for c in mapped.changes if c.resource_type == rtype and c.resource is not None]


def _one(mapped, rtype: str) -> dict:
    [resource] = _resources(mapped, rtype)
    return resource


def _accepted(text: str):
    mapped = map_message(text)
    assert mapped.problem is None, mapped.problem and mapped.problem.as_dict()
    for change in mapped.changes:
        if change.resource is not None:
            validate(change.resource, change.resource_type)
    return mapped


# ---- PRT, pre-adopted from v2.9 ------------------------------------------------------------------------


def test_prt_is_read_in_message_order_with_the_version_that_defines_it():
    message, segments = preadopted.read(_sample("oru-cr-bio-initial-n1-n3.hl7"))
    assert message.version == "2.5"
    names = [s.name for s in segments]
    assert names[:10] == ["MSH", "PID", "PV1", "ORC", "OBR", "OBX", "PRT", "PRT", "PRT", "PRT"]
    assert segments[6].prt_4.to_er7() == "SB^^participation"


def test_a_message_without_prt_reads_as_before():
    message, segments = preadopted.read(lab_result())
    assert [s.name for s in segments] == [s.name for s in message.children]


def test_prt_repeating_beyond_the_limit_is_refused():
    text = _sample("oru-cr-bio-initial-n1-n3.hl7").replace("PRT||UC||REPLY^^participation||",
                                                          "PRT||UC||REPLY^^participation|" + "~" * 5000 + "|")
    with pytest.raises(Unreadable) as caught:
        preadopted.read(text)
    assert "PRT-5" in caught.value.text


@pytest.mark.parametrize("path", DOCUMENT_SAMPLES, ids=lambda p: p.name)
def test_every_cisis_sample_is_accepted_with_valid_resources(path):
    mapped = _accepted(read(path).decode("utf-8"))
    assert mapped.code == "AA"
    assert any(c.resource_type == "DocumentReference" for c in mapped.changes)


# ---- ORU as French labs send it -----------------------------------------------------------------------------


def test_lab_report_document_author_recipients_and_metadata():
    mapped = _accepted(_sample("oru-cr-bio-initial-n1-n3.hl7"))
    document = _one(mapped, "DocumentReference")
    binaries = _resources(mapped, "Binary")
    assert [base64.b64decode(b["data"]) for b in binaries] == [b"Document medcial au format CDA niveau 1"] * 2
    assert [c["attachment"]["url"] for c in document["content"]] == [f"Binary/{b['id']}" for b in binaries]
    assert document["content"][0]["attachment"]["size"] == 39
    assert document["status"] == "current" and document["docStatus"] == "final"
    assert {"system": "urn:relais:hl7v2:labo", "value": "1001-E1"} in document["identifier"]
    author, recipient = _resources(mapped, "Practitioner")
    assert author["identifier"] == [{"system": IDNPS, "value": "801234567866"},
                                    {"system": RPPS, "value": "01234567866"}]
    assert author["name"] == [{"family": "DIAZ", "given": ["Thierry"]}]
    assert recipient["telecom"] == [{"system": "email", "value": "adam.hoda@test-ci-sis.mssante.fr"}]
    lab = _one(mapped, "Organization")
    assert lab["identifier"] == [{"system": IDNST, "value": "1120459876"}, {"system": FINESS, "value": "120459876"}]
    assert [a["reference"] for a in document["author"]] == [f"Practitioner/{author['id']}", f"Organization/{lab['id']}"]
    patient = _one(mapped, "Patient")
    recipients = [e["valueReference"]["reference"] for e in document["extension"] if "valueReference" in e]
    assert recipients == [f"Practitioner/{recipient['id']}", f"Patient/{patient['id']}"]
    [metadata] = [e["extension"] for e in document["extension"] if "extension" in e]
    values = {m["url"]: next(v for k, v in m.items() if k != "url") for m in metadata}
    assert values["DESTDMP"] is True and values["INVISIBLE_PATIENT"] is False and values["ACK_LECTURE_MSS"] is True
    assert values["CORPSMAIL_PS"].startswith("Cher confrère")  # its Base64 is cut short: read as far as it goes
    assert values["REPLY"] == "adam.hoda@test-ci-sis.mssante.fr"
    # professionals are created once, never overwritten (If-None-Exist)
    assert {c.action for c in mapped.changes if c.resource_type in ("Practitioner", "Organization")} == {write.CREATE}
    assert all(c.condition is not None for c in mapped.changes if c.resource_type == "Practitioner")


def test_every_oru_gives_a_diagnostic_report_grouping_its_observations():
    mapped = _accepted(lab_result())
    [observation] = _resources(mapped, "Observation")
    report = _one(mapped, "DiagnosticReport")
    assert report["result"] == [{"reference": f"Observation/{observation['id']}"}]
    assert report["code"]["coding"][0]["code"] == "24331-1" and report["status"] == "unknown"
    assert report["identifier"][0]["value"] == "FIL-LAB0001"
    assert report["effectiveDateTime"] == "2026-11-20T07:55:00+01:00"  # OBR-7; each result keeps its OBX-14


@pytest.mark.parametrize("path", ORU, ids=lambda p: p.name)
def test_the_shared_oru_samples_each_give_their_reports(path):
    mapped = _accepted(read(path).decode("utf-8"))
    reports = _resources(mapped, "DiagnosticReport")
    observations = {f"Observation/{o['id']}" for o in _resources(mapped, "Observation")}
    assert reports and {r["reference"] for report in reports for r in report.get("result", [])} == observations


def test_a_corrected_report_replaces_the_current_document():
    mapped = _accepted(_sample("oru-cr-bio-replace-n1-n3.er7"))
    [patch] = [c for c in mapped.changes if c.action == write.PATCH]
    assert patch.resource_type == "DocumentReference"
    assert patch.patch == [{"op": "replace", "path": "/status", "value": "superseded"}]
    params = {(p.param, p.op) for clause in patch.condition.clauses for p in clause}
    assert params == {("identifier", "eq"), ("status", "eq"), ("identifier", "not")}
    document = _one(mapped, "DocumentReference")
    assert document["relatesTo"] == [{"code": "replaces", "target": {"reference": f"DocumentReference/{patch.id}"}}]
    assert document["masterIdentifier"]["value"].startswith("1001-E1/C/")
    assert _one(mapped, "DiagnosticReport")["status"] == "corrected"


def test_a_deletion_marks_the_current_document_entered_in_error_and_stores_no_content():
    mapped = _accepted(_sample("oru-cr-bio-delete-n1-n3.er7"))
    [patch] = [c for c in mapped.changes if c.action == write.PATCH]
    assert patch.patch[0] == {"op": "replace", "path": "/status", "value": "entered-in-error"}
    assert _resources(mapped, "Binary") == [] and _resources(mapped, "DocumentReference") == []
    assert _one(mapped, "DiagnosticReport")["status"] == "entered-in-error"


def test_a_resent_report_names_the_same_resources():
    first = _accepted(_sample("oru-cr-bio-initial-n1-n3.hl7").replace("|015|", "|016|"))
    again = _accepted(_sample("oru-cr-bio-initial-n1-n3.hl7"))
    assert [c.id for c in first.changes] == [c.id for c in again.changes]


def test_an_rp_result_is_stored_as_a_reference():
    mapped = _accepted(lab_result(obx="OBX|1|RP|18748-4^Diagnostic imaging study^LN||"
                                      "https://pacs.example/wado?study=1.2.3^PACS^IM^JPEG||||||F"))
    document = _one(mapped, "DocumentReference")
    assert document["content"] == [{"attachment": {"contentType": "image/jpeg",
                                                   "url": "https://pacs.example/wado?study=1.2.3",
                                                   "title": "Diagnostic imaging study"}}]
    assert _resources(mapped, "Binary") == [] and _resources(mapped, "Observation") == []
    assert _one(mapped, "DiagnosticReport")["presentedForm"][0]["url"] == "https://pacs.example/wado?study=1.2.3"


def test_a_local_rp_pointer_gets_a_uri():
    mapped = _accepted(lab_result(obx="OBX|1|RP|18748-4^Imaging^LN||IMG-42^&1.2.250.1.999.7&ISO^AP^PDF||||||F"))
    url = _one(mapped, "DocumentReference")["content"][0]["attachment"]["url"]
    assert url == "urn:relais:hl7v2:1.2.250.1.999.7/IMG-42"


def test_an_ed_that_is_not_base64_is_an_ae_at_its_obx():
    mapped = map_message(lab_result(obx="OBX|1|ED|11502-2^CR^LN||^TEXT^XML^Base64^not base64!!||||||F"))
    assert mapped.code == "AE" and mapped.problem.code == 102 and mapped.problem.location == "OBX^1^5"


# ---- MDM -------------------------------------------------------------------------------------------------


def test_mdm_document_identity_status_author_and_authenticator():
    mapped = _accepted(_sample("mdm-cr-radio-initial-n1.er7"))
    document = _one(mapped, "DocumentReference")
    assert document["masterIdentifier"] == {"system": "urn:relais:hl7v2:Organisation-Y",
                                            "value": "1.2.250.1.71.4.2.2.120456789.A71024000081"}
    assert document["docStatus"] == "final" and document["date"] == "2022-12-16T09:32:00+01:00"
    assert document["type"]["coding"][0] == {"system": "http://loinc.org", "code": "18748-4",
                                             "display": "CR d'imagerie médicale"}
    assert base64.b64decode(_one(mapped, "Binary")["data"]).startswith(b"<ClinicalDocument")
    assert document["authenticator"] == document["author"][0]


def test_mdm_t10_supersedes_its_parent_and_t04_with_d_deletes():
    replaced = _accepted(_sample("mdm-cr-radio-replace-n1.er7"))
    [patch] = [c for c in replaced.changes if c.action == write.PATCH]
    [clause] = [c for c in patch.condition.clauses if c[0].param == "identifier" and c[0].op == "eq"]
    assert clause[0].values[1] == "1.2.250.1.71.4.2.2.120456789A71024000081"  # TXA-13 as sent
    deleted = _accepted(_sample("mdm-cr-radio-delete-n1.er7"))
    [patch] = [c for c in deleted.changes if c.action == write.PATCH]
    [clause] = [c for c in patch.condition.clauses if c[0].param == "identifier"]
    assert clause[0].values[1] == "1.2.250.1.71.4.2.2.120456789.A71024000082"  # TXA-12: this version goes


def test_mdm_t10_without_a_parent_is_an_ae():
    text = _sample("mdm-cr-radio-replace-n1.er7").replace("|1.2.250.1.71.4.2.2.120456789A71024000081^Organisation-Y|",
                                                          "||")
    mapped = map_message(text)
    assert mapped.code == "AE" and mapped.problem.location == "TXA^1^13"


def test_mdm_text_lines_become_a_plain_text_document():
    text = care.message("MDM^T02^MDM_T02", "MDM9", "EVN|T02|20261120", care.PID,
                        "TXA|1|CN^Consultation note|TX|20261120101500||||||||DOC-9^CHU-X|||||AU",
                        "OBX|1|TX|11488-4^Consult note^LN||Patient seen today.||||||F",
                        "OBX|2|TX|11488-4^Consult note^LN||Blood pressure stable.||||||F")
    mapped = _accepted(text)
    assert base64.b64decode(_one(mapped, "Binary")["data"]) == b"Patient seen today.\nBlood pressure stable."
    assert _one(mapped, "DocumentReference")["content"][0]["attachment"]["contentType"] == "text/plain"


# ---- orders, referrals, vaccinations, pharmacy, problems, appointments -----------------------------------


def test_an_order_is_a_service_request_found_by_its_placer_number():
    mapped = _accepted(care.orm())
    request = _one(mapped, "ServiceRequest")
    assert [i["value"] for i in request["identifier"]] == ["PL123", "FL456"]
    assert request["status"] == "active" and request["intent"] == "order" and request["priority"] == "routine"
    assert request["code"]["coding"][0]["code"] == "2345-7" and request["note"] == [{"text": "à jeun"}]
    assert request["occurrenceDateTime"] == "2026-11-21T08:00:00+01:00"
    assert request["reasonCode"][0]["coding"][0]["code"] == "E11.9"
    requester = _one(mapped, "Practitioner")
    assert request["requester"] == {"reference": f"Practitioner/{requester['id']}"}
    [change] = [c for c in mapped.changes if c.resource_type == "ServiceRequest"]
    assert change.action == write.UPDATE and change.condition is not None
    cancelled = _accepted(care.orm("ORM2", control="CA", status=""))
    assert _one(cancelled, "ServiceRequest")["status"] == "revoked"
    assert _one(cancelled, "ServiceRequest")["id"] == request["id"]


def test_a_laboratory_order_and_a_referral_are_service_requests():
    assert _one(_accepted(care.oml()), "ServiceRequest")["code"]["coding"][0]["code"] == "718-7"
    referral = _accepted(care.ref())
    request = _one(referral, "ServiceRequest")
    assert request["category"][0]["coding"][0]["code"] == "3457005" and request["status"] == "active"
    referring, referred = _resources(referral, "Practitioner")
    assert referring["identifier"] == [{"system": IDNPS, "value": "801234567897"}]
    assert referred["identifier"] == [{"system": RPPS, "value": "80123456780"}]
    assert request["requester"]["reference"] == f"Practitioner/{referring['id']}"
    assert request["performer"] == [{"reference": f"Practitioner/{referred['id']}"}]
    assert _one(_accepted(care.ref("REF2", status="R^Rejected")), "ServiceRequest")["status"] == "revoked"


def test_a_vaccination_is_an_immunization_and_its_deletion_entered_in_error():
    mapped = _accepted(care.vxu())
    immunization = _one(mapped, "Immunization")
    assert immunization["vaccineCode"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/cvx", "code": "48",
                                                        "display": "HPV, quadrivalent"}
    assert immunization["status"] == "completed" and immunization["primarySource"] is True
    assert (immunization["lotNumber"], immunization["expirationDate"]) == ("Z0860BB", "2016-08-07")
    assert immunization["doseQuantity"] == {"value": 0.5, "unit": "MilliLiter", "system": "http://unitsofmeasure.org",
                                            "code": "ml"}
    assert immunization["site"]["coding"][0]["code"] == "LA"
    assert immunization["identifier"][0]["value"] == "4242546"
    deleted = _one(_accepted(care.vxu("VXU2", action="D")), "Immunization")
    assert deleted["status"] == "entered-in-error" and deleted["id"] == immunization["id"]


def test_a_pharmacy_order_and_its_dispense():
    request = _one(_accepted(care.rde()), "MedicationRequest")
    assert request["status"] == "active"
    assert request["medicationCodeableConcept"]["coding"][0]["code"] == "3400936381215"
    assert request["dosageInstruction"][0]["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "comprimé"}}]
    assert request["dosageInstruction"][0]["text"] == "Un comprimé matin et soir"
    assert request["dispenseRequest"] == {"validityPeriod": {"start": "2026-11-20", "end": "2026-11-30"},
                                          "numberOfRepeatsAllowed": 2, "quantity": {"value": 60, "unit": "comprimé"}}
    assert _one(_accepted(care.rde("RDE2", control="DC")), "MedicationRequest")["status"] == "stopped"
    dispense = _one(_accepted(care.rds()), "MedicationDispense")
    assert dispense["status"] == "completed" and dispense["whenHandedOver"] == "2026-11-21T10:00:00+01:00"
    assert dispense["quantity"] == {"value": 60, "unit": "comprimé"}
    assert dispense["authorizingPrescription"][0]["identifier"]["value"] == "RX100"  # by identifier: may live elsewhere
    assert dispense["identifier"][0]["value"] == "DISP9"


def test_problems_added_updated_and_deleted():
    added = _one(_accepted(care.ppr()), "Condition")
    assert added["clinicalStatus"]["coding"][0]["code"] == "active"
    assert added["category"][0]["coding"][0]["code"] == "problem-list-item"
    assert added["code"]["coding"][0] == {"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10",
                                          "display": "Hypertension essentielle"}
    assert added["onsetDateTime"] == "2020-01-15" and added["identifier"][0]["value"] == "PRB77"
    resolved = _one(_accepted(care.ppr("PPR2", "PC2", "UP", "R^Resolved")), "Condition")
    assert resolved["clinicalStatus"]["coding"][0]["code"] == "resolved" and resolved["id"] == added["id"]
    deleted = _one(_accepted(care.ppr("PPR3", "PC3", "DE")), "Condition")
    assert deleted["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in deleted  # con-5


def test_a_problem_update_without_its_instance_id_is_an_ae():
    text = care.ppr("PPR4", "PC2", "UP").replace("|PRB77^CHU-X|", "||")
    mapped = map_message(text)
    assert mapped.code == "AE" and mapped.problem.location == "PRB^1^4"


def test_appointments_booked_and_cancelled():
    booked = _accepted(care.siu())
    appointment = _one(booked, "Appointment")
    assert appointment["status"] == "booked"
    assert (appointment["start"], appointment["end"]) == ("2026-11-25T14:30:00+01:00", "2026-11-25T15:00:00+01:00")
    assert appointment["minutesDuration"] == 30
    practitioner = _one(booked, "Practitioner")
    actors = [p["actor"] for p in appointment["participant"]]
    assert actors[1:] == [{"reference": f"Practitioner/{practitioner['id']}"}, {"display": "CARDIO B12 1 CHU-X"}]
    cancelled = _one(_accepted(care.siu("SIU2", "S15")), "Appointment")
    assert cancelled["status"] == "cancelled" and cancelled["id"] == appointment["id"]
    assert cancelled["cancelationReason"]["text"] == "Annulé par le patient"


def test_a_booked_appointment_without_times_is_an_ae():
    mapped = map_message(care.siu("SIU3", start=""))
    assert mapped.code == "AE" and mapped.problem.code == 101


@pytest.mark.parametrize("kind", ["BAR^P01^BAR_P01", "BAR^P05", "DFT^P03^DFT_P03", "DFT^P11"])
def test_billing_messages_are_refused(kind):
    mapped = map_message(care.billing(kind))
    assert mapped.code == "AR" and mapped.problem.code == 200
    assert mapped.problem.text == "billing messages are not accepted"


def test_other_events_of_an_accepted_type_name_the_accepted_ones():
    mapped = map_message(care.message("SIU^S17^SIU_S12", "SIU9", "SCH|A1|A1F", care.PID))
    assert mapped.code == "AR" and mapped.problem.code == 201 and "S12 S13 S14 S15" in mapped.problem.text


def test_the_accepted_message_types():
    assert {code: set(triggers) for code, triggers in MESSAGE_TYPES.items() if code != "ADT"} == {
        "ORU": {"R01"}, "MDM": {"T02", "T04", "T10"}, "ORM": {"O01"}, "OML": {"O21"}, "REF": {"I12"},
        "VXU": {"V04"}, "RDE": {"O11"}, "RDS": {"O13"}, "PPR": {"PC1", "PC2", "PC3"},
        "SIU": {"S12", "S13", "S14", "S15"}}


def _cda(own: str, parent: str | None = None) -> str:
    related = (f'<relatedDocument typeCode="RPLC"><parentDocument><id root="1.2.250.1.999" extension="{parent}"/>'
               "</parentDocument></relatedDocument>") if parent else ""
    xml = (f'<ClinicalDocument xmlns="urn:hl7-org:v3"><id root="1.2.250.1.999" extension="{own}"/>{related}'
           "</ClinicalDocument>")
    return base64.b64encode(xml.encode()).decode()


def test_a_cda_names_its_own_version_and_the_parent_it_replaces():
    initial = _accepted(lab_result(obx=f"OBX|1|ED|11502-2^CR^LN||^TEXT^XML^Base64^{_cda('DOC-1')}||||||F"))
    assert _one(initial, "DocumentReference")["masterIdentifier"] == {"system": "urn:oid:1.2.250.1.999",
                                                                      "value": "DOC-1"}
    replaced = _accepted(lab_result(obx=f"OBX|1|ED|11502-2^CR^LN||^TEXT^XML^Base64^{_cda('DOC-2', 'DOC-1')}||||||C"))
    [patch] = [c for c in replaced.changes if c.action == write.PATCH]
    named = {p.values[1] for clause in patch.condition.clauses for p in clause if p.param == "identifier"}
    assert named == {"DOC-1", "DOC-2"}  # the parent, and not this version
    assert _one(replaced, "DocumentReference")["masterIdentifier"]["value"] == "DOC-2"
