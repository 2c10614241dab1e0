"""ADT as IHE PAM and PAM France 2.11 send it: the pure mapper, on the shared samples and one-case messages."""

from __future__ import annotations

import pytest

from fhir_server.codes import (
    CALL_ORDER,
    CARE_ROLE_SYSTEM,
    CONSENT_KIND_SYSTEM,
    DMP_CONSULTATION,
    DMP_FEEDING,
    IDENTITY_RELIABILITY,
    IDENTITY_STATUS_SYSTEM,
    RPPS,
)
from fhir_server.resources import validate
from mappers.hl7v2 import map_message
from mappers.hl7v2.datatypes import date_time as at  # the sender's times, however the feed reads their zone
from mappers.hl7v2.zfa import DMP_STATUS
from tests.mappers.adt_samples import GP, GP_RPPS, NURSE_RPPS, adt, pid, pv1, rol, segment, zbe
from tests.mappers.hl7v2_samples import PAM, ack_fields, read

CONSENT_SAMPLE = next(p for p in PAM if p.name == "consent-consultation-non-opposition.er7")
OBJECTION_SAMPLE = next(p for p in PAM if p.name == "no-consent-opposition.er7")


def _mapped(text: str):
    mapped = map_message(text)
    assert mapped.code == "AA", mapped.problem and mapped.problem.as_dict()
    for change in mapped.changes:
        validate(change.resource, change.resource_type)
    return mapped


def _all(mapped, rtype: str) -> list[dict]:
    return [c.resource for c in mapped.changes if c.resource_type == rtype]


def _one(mapped, rtype: str) -> dict:
    [resource] = _all(mapped, rtype)
    return resource


def _change(mapped, rtype: str):
    [change] = [c for c in mapped.changes if c.resource_type == rtype]
    return change


@pytest.mark.parametrize("event, status", [
    ("A01", "in-progress"), ("A02", "in-progress"), ("A03", "finished"), ("A04", "in-progress"), ("A05", "planned"),
    ("A06", "in-progress"), ("A07", "in-progress"), ("A08", "in-progress"), ("A11", "cancelled"),
    ("A12", "in-progress"), ("A13", "in-progress"), ("A21", "onleave"), ("A22", "in-progress"),
    ("A38", "cancelled"),
])
def test_each_visit_event_gives_the_patient_and_its_encounter_with_the_events_status(event, status):
    mapped = _mapped(adt(event, pid(), pv1()))
    patient, encounter = _one(mapped, "Patient"), _one(mapped, "Encounter")
    assert encounter["status"] == status and encounter["subject"] == {"reference": f"Patient/{patient['id']}"}
    assert [c.resource_type for c in mapped.changes] == ["Patient", "Encounter"]
    assert all(c.action == "update" and c.condition is not None for c in mapped.changes)


@pytest.mark.parametrize("event", ["A28", "A31"])
def test_person_events_give_the_patient_alone(event):
    mapped = _mapped(adt(event, pid(), "PV1|1|N"))
    assert [c.resource_type for c in mapped.changes] == ["Patient"]


@pytest.mark.parametrize("event", ["A14", "A27", "A60", "A54"])
def test_other_adt_events_are_ar_201_with_their_name(event):
    mapped = map_message(adt(event, pid(), pv1()))
    assert mapped.code == "AR" and not mapped.changes
    assert mapped.problem.code == 201 and f"ADT^{event}" in mapped.problem.text
    assert "|201^" in ack_fields(mapped.ack(ack_id="E1"))["err"]


def test_an_admission_dates_the_visit_and_a_cancelled_discharge_takes_the_end_back():
    admitted = _one(_mapped(adt("A01", pid(), pv1())), "Encounter")
    assert admitted["period"] == {"start": at("20240306111154")}  # EVN-6
    cancelled = _change(_mapped(adt("A13", pid(), pv1())), "Encounter")
    stored = {**admitted, "status": "finished", "period": {"start": at("20240306111154"),
                                                            "end": at("20240308100000")}}
    taken_back = cancelled.carry(stored, cancelled.resource)
    assert taken_back["status"] == "in-progress" and taken_back["period"] == {"start": at("20240306111154")}


def test_an_update_keeps_the_visits_status():
    update = _change(_mapped(adt("A08", pid(), pv1())), "Encounter")
    stored = {**update.resource, "status": "planned"}
    assert update.carry(stored, update.resource)["status"] == "planned"


# ---- PAM France: the real samples ------------------------------------------------------------------


def test_the_care_team_of_a_pam_france_sample_says_whom_to_call_first():
    """consent-consultation-non-opposition.er7 as it is: ROL ODRP (the médecin traitant) with an RPPS and a phone."""
    mapped = _mapped(read(CONSENT_SAMPLE).decode())
    team = _one(mapped, "CareTeam")
    patient = _one(mapped, "Patient")
    assert team["status"] == "active" and team["subject"] == {"reference": f"Patient/{patient['id']}"}
    first = team["participant"][0]
    roles = {c["system"]: c["code"] for c in first["role"][0]["coding"]}
    assert roles[CARE_ROLE_SYSTEM] == "general-practitioner" == CALL_ORDER[0]
    assert roles["http://snomed.info/sct"] == "62247001"
    assert first["member"]["identifier"] == {"system": RPPS, "value": GP_RPPS}
    practitioners = {p["id"]: p for p in _all(mapped, "Practitioner")}
    doctor = practitioners[first["member"]["reference"].split("/")[1]]
    assert {"system": RPPS, "value": GP_RPPS}.items() <= doctor["identifier"][0].items()
    assert {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "8" + GP_RPPS}.items() <= doctor["identifier"][1].items()
    assert doctor["telecom"] == [{"system": "phone", "value": "0546442221", "use": "work"}]
    assert doctor["name"] == [{"family": "AGNES", "given": ["Isabelle"]}]
    # the médecin traitant is the Patient's general practitioner too
    assert patient["generalPractitioner"][0]["reference"] == first["member"]["reference"]
    # a Practitioner is found or created by either of its national identifiers
    change = next(c for c in mapped.changes if c.resource is doctor)
    assert change.condition is not None and change.action == "update"


def test_pv1_professionals_are_the_encounters_participants():
    mapped = _mapped(read(CONSENT_SAMPLE).decode())
    encounter = _one(mapped, "Encounter")
    kinds = [p["type"][0]["coding"][0]["code"] for p in encounter["participant"]]
    assert kinds == ["ATND", "ADM"]  # PV1-7 and PV1-17 name the same doctor: one Practitioner
    assert {p["individual"]["identifier"]["value"] for p in encounter["participant"]} == {"01234567897"}
    assert len(_all(mapped, "Practitioner")) == 2


def test_pid_32_and_zfd_give_fr_core_identity_reliability():
    patient = _one(_mapped(read(CONSENT_SAMPLE).decode()), "Patient")
    [reliability] = [e for e in patient["extension"] if e["url"] == IDENTITY_RELIABILITY]
    parts = {e["url"]: e for e in reliability["extension"]}
    assert parts["identityStatus"]["valueCoding"]["system"] == IDENTITY_STATUS_SYSTEM
    assert parts["identityStatus"]["valueCoding"]["code"] == "VALI"
    assert parts["dateInterrogationINSi"]["valueDate"] == "2021-12-01"
    assert parts["methodCollection"]["valueCoding"]["code"] == "INSI"


@pytest.mark.parametrize("code, status", [("VALI", "VALI"), ("QUAL", "QUAL"), ("RECUP", "RECUP"), ("PROV", "PROV"),
                                          ("DOUTE", "PROV"), ("FICTI", "PROV"), ("VIDE", "PROV")])
def test_pid_32_alone_is_the_identity_status(code, status):
    patient = _one(_mapped(adt("A28", pid(extra="|" * 19 + code))), "Patient")
    [reliability] = [e for e in patient["extension"] if e["url"] == IDENTITY_RELIABILITY]
    assert reliability["extension"] == [{"url": "identityStatus", "valueCoding": {
        "system": IDENTITY_STATUS_SYSTEM, "code": status, "display": reliability["extension"][0]["valueCoding"]
        ["display"]}}]


@pytest.mark.parametrize("path, feeding, consultation", [(CONSENT_SAMPLE, "permit", "permit"),
                                                          (OBJECTION_SAMPLE, "deny", "deny")],
                         ids=["INO-IC", "IO-INC"])
def test_zfa_gives_a_consent_for_feeding_and_for_consulting_the_dmp(path, feeding, consultation):
    mapped = _mapped(read(path).decode())
    patient = _one(mapped, "Patient")
    consents = {c["category"][0]["coding"][0]["code"]: c for c in _all(mapped, "Consent")}
    assert set(consents) == {DMP_FEEDING, DMP_CONSULTATION}
    for kind, expected in ((DMP_FEEDING, feeding), (DMP_CONSULTATION, consultation)):
        consent = consents[kind]
        assert consent["status"] == "active" and consent["patient"] == {"reference": f"Patient/{patient['id']}"}
        assert consent["category"][0]["coding"][0]["system"] == CONSENT_KIND_SYSTEM
        assert consent["provision"]["type"] == expected
    [status] = [e for e in patient["extension"] if e["url"] == DMP_STATUS]
    assert status["extension"][0]["valueCoding"]["code"] == "ACTIF"
    # the same patient's next ZFA updates the same two Consents
    again = map_message(read(OBJECTION_SAMPLE if path == CONSENT_SAMPLE else CONSENT_SAMPLE).decode())
    assert {c.id for c in again.changes if c.resource_type == "Consent"} == {c["id"] for c in consents.values()}


def test_zfa_not_collected_gives_no_consent():
    mapped = _mapped(adt("A01", pid(), pv1(), "ZFA|ACTIF|20240306111154|||||||NA||NA|"))
    assert _all(mapped, "Consent") == []


def test_zbe_and_pv2_on_the_pam_sample():
    encounter = _one(_mapped(read(CONSENT_SAMPLE).decode()), "Encounter")
    [movement] = encounter["location"]
    assert movement["location"] == {"identifier": {"value": "6268", "assigner": {"display": "CHU-X"}},
                                    "display": "Chir V"}
    assert movement["status"] == "active" and movement["period"] == {"start": at("20240306110000")}
    planned = {e["url"].rsplit(".", 1)[1]: e["valueDateTime"] for e in encounter["extension"]}
    assert planned == {"plannedStartDate": at("20240306100000"), "plannedEndDate": at("20240310080000")}


def test_a_transfer_ends_the_movement_before_it_and_its_cancel_reopens_it():
    first = _one(_mapped(adt("A01", pid(), pv1(), zbe("M1", "20240306110000"))), "Encounter")
    transfer = _change(_mapped(adt("A02", pid(), pv1(), zbe("M2", "20240307090000", unit="Cardio", code="7000"))),
                       "Encounter")
    moved = transfer.carry(first, transfer.resource)
    assert [(m["location"]["display"], m["status"], m["period"].get("end")) for m in moved["location"]] == [
        ("Chir V", "completed", at("20240307090000")), ("Cardio", "active", None)]
    cancel = _change(_mapped(adt("A12", pid(), pv1(), zbe("M2", "20240307090000", action="CANCEL"))), "Encounter")
    assert "location" not in cancel.resource  # a cancelled movement never becomes a location
    back = cancel.carry(moved, cancel.resource)
    assert [(m["location"]["display"], m["status"], m["period"].get("end")) for m in back["location"]] == [
        ("Chir V", "active", None)]


def test_segments_that_carry_care_inside_an_admission():
    text = adt(
        "A01", pid(extra="|" * 16 + "20240301083000|Y"), "PD1||||10000077777^MEDECIN^Paul^^^^^^^^^^RPPS",
        GP, rol("ODRP", GP_RPPS, "AGNES", "0546442221"), rol("NURSE", NURSE_RPPS, "SOIN", "0611111111"),
        "NK1|1|DUPONT^MARIE|SPO^Spouse^HL70063|1 rue X^^LYON^^69001^FRA|^PRN^PH^^^^^^^^^0622222222|"
        "|C^Emergency contact^HL70131",
        pv1(),
        "OBX|1|NM|29463-7^Body weight^LN||72.5|kg^kg^UCUM|||||F|||20240306100000",
        "AL1|1|DA|1191^Aspirin^RXNORM|SV|hives~wheezing|20200101",
        segment("DG1", {1: "1", 3: "I10^Essential hypertension^I10", 5: "20240306", 6: "F", 20: "DG-1^CHU-X"}),
        segment("PR1", {1: "1", 3: "0TY00Z0^Kidney transplant^I10P", 5: "20240306120000", 19: "PR-1^CHU-X"}),
        segment("IN1", {1: "1", 2: "AMO^Assurance maladie obligatoire", 3: "CPAM75^^^CPAM", 4: "CPAM DE PARIS",
                        12: "20240101", 13: "20241231", 17: "SEL", 36: "1790328123456"}),
        segment("IN2", {2: "1790328123456", 61: "M-42"}),
    )
    mapped = _mapped(text)
    patient = _one(mapped, "Patient")
    assert patient["deceasedDateTime"] == at("20240301083000")  # PID-29 (PID-30 Y)
    subject = {"reference": f"Patient/{patient['id']}"}
    encounter = _one(mapped, "Encounter")
    visit = {"reference": f"Encounter/{encounter['id']}"}
    weight = _one(mapped, "Observation")
    assert weight["valueQuantity"]["value"] == 72.5 and weight["subject"] == subject and weight["encounter"] == visit
    allergy = _one(mapped, "AllergyIntolerance")
    assert allergy["category"] == ["medication"] and allergy["criticality"] == "high"
    assert allergy["reaction"][0]["manifestation"] == [{"text": "hives"}, {"text": "wheezing"}]
    assert allergy["patient"] == subject and allergy["code"]["coding"][0]["code"] == "1191"
    condition = _one(mapped, "Condition")
    assert condition["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert condition["verificationStatus"]["coding"][0]["code"] == "confirmed"
    assert condition["encounter"] == visit and condition["identifier"][0]["value"] == "DG-1"
    procedure = _one(mapped, "Procedure")
    assert procedure["status"] == "completed" and procedure["performedDateTime"] == at("20240306120000")
    related = _one(mapped, "RelatedPerson")
    assert related["patient"] == subject and related["name"] == [{"family": "DUPONT", "given": ["MARIE"]}]
    assert patient["contact"][0]["relationship"][1]["coding"][0]["code"] == "C"
    assert patient["contact"][0]["telecom"] == [{"system": "phone", "value": "0622222222", "use": "home"}]
    coverage = _one(mapped, "Coverage")
    assert coverage["beneficiary"] == subject and coverage["payor"][0]["display"] == "CPAM DE PARIS"
    assert coverage["subscriberId"] == "1790328123456" and coverage["relationship"]["coding"][0]["code"] == "self"
    assert coverage["period"] == {"start": "2024-01-01", "end": "2024-12-31"}
    # PD1-4 and ROL ODRP name two médecins traitants (two senders disagree): both, the nurse after them
    team = _one(mapped, "CareTeam")
    roles = [next(c["code"] for c in p["role"][0]["coding"] if c["system"] == CARE_ROLE_SYSTEM)
             for p in team["participant"]]
    assert roles == ["general-practitioner", "general-practitioner", "nurse"]  # ROL-3 may be our own code
    assert len(patient["generalPractitioner"]) == 2


def test_a_nurse_by_rpps_profession_and_the_order_of_the_team():
    nurse = (f"ROL||AD|FHCP|{NURSE_RPPS}^SOIN^Lea^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^L^^^RPPS"
             "|||||60^Infirmier^TRE_G15||||^WPN^PH^^^^^^^^^0611111111")
    team = _one(_mapped(adt("A08", pid(), nurse, GP, pv1())), "CareTeam")
    roles = [p["role"][0]["coding"][0]["code"] for p in team["participant"]]
    assert roles == ["general-practitioner", "nurse"]  # CALL_ORDER, whatever order the ROLs came in


def test_a_message_updates_the_care_team_it_does_not_replace_it():
    first = _change(_mapped(adt("A08", pid(), GP, rol("PP", NURSE_RPPS, "OTHER", "0600000000"))), "CareTeam")
    stored = first.resource
    # ROL-2 DE removes one member; members a message does not name stay
    removal = _change(_mapped(adt("A08", pid(), rol("PP", NURSE_RPPS, "OTHER", "0600000000", action="DE"))),
                      "CareTeam")
    after = removal.carry(stored, removal.resource)
    assert [p["member"]["identifier"]["value"] for p in after["participant"]] == [GP_RPPS]
    # a new médecin traitant replaces the former one
    new_gp = _change(_mapped(adt("A08", pid(), rol("ODRP", "10000055555", "NOUVEAU", "0500000000"))), "CareTeam")
    assert [p["member"]["identifier"]["value"] for p in new_gp.carry(after, new_gp.resource)["participant"]] == [
        "10000055555"]


def test_an_update_without_pd1_keeps_the_general_practitioner_and_links():
    update = _change(_mapped(adt("A31", pid(family="RENAMED"))), "Patient")
    stored = {"resourceType": "Patient", "id": "p1", "generalPractitioner": [{"reference": "Practitioner/gp"}],
              "link": [{"other": {"reference": "Patient/old"}, "type": "replaces"}], "name": [{"family": "OLD"}],
              "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "279035121518989"}]}
    merged = update.carry(stored, update.resource)
    assert merged["name"][0]["family"] == "RENAMED"
    assert merged["generalPractitioner"] == stored["generalPractitioner"] and merged["link"] == stored["link"]


# ---- A40 merge and A47 identifier change ------------------------------------------------------------


def test_a40_links_the_survivor_and_the_patient_it_replaces():
    mapped = _mapped(adt("A40", pid(ipp="000009", family="SURVIVOR"), "MRG|000003^^^CHU-X&000897406&N^PI"))
    survivor, retired = (c for c in mapped.changes if c.resource_type == "Patient")
    assert survivor.resource["identifier"][0]["value"] == "000009"
    assert survivor.resource["link"] == [{"other": {"reference": f"Patient/{retired.id}"}, "type": "replaces"}]
    assert retired.resource["active"] is False
    assert retired.resource["link"] == [{"other": {"reference": f"Patient/{survivor.id}"}, "type": "replaced-by"}]
    assert retired.resource["identifier"] == [{"type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem"
                                                                    "/v2-0203", "code": "PI"}]},
                                               "system": "urn:relais:hl7v2:CHU-X", "value": "000003",
                                               "assigner": {"display": "CHU-X"}}]
    # the merged-away Patient keeps its data; an earlier merge's replaced-by gives way to this one
    stored = {"resourceType": "Patient", "id": retired.id, "name": [{"family": "PAT-TROIS"}], "active": True,
              "identifier": retired.resource["identifier"],
              "link": [{"other": {"reference": "Patient/older"}, "type": "replaces"},
                       {"other": {"reference": "Patient/elsewhere"}, "type": "replaced-by"}]}
    kept = retired.carry(stored, retired.resource)
    assert kept["name"] == [{"family": "PAT-TROIS"}] and kept["active"] is False
    assert kept["link"] == [{"other": {"reference": "Patient/older"}, "type": "replaces"},
                            {"other": {"reference": f"Patient/{survivor.id}"}, "type": "replaced-by"}]
    # the survivor adds the link to those it had
    again = survivor.carry({**survivor.resource, "link": [{"other": {"reference": "Patient/older"},
                                                           "type": "replaces"}]}, survivor.resource)
    assert len(again["link"]) == 2


def test_a40_without_mrg_or_merging_a_patient_into_itself_is_refused():
    missing = map_message(adt("A40", pid()))
    assert (missing.code, missing.problem.code) == ("AR", 100)
    itself = map_message(adt("A40", pid(), "MRG|000003^^^CHU-X&000897406&N^PI"))
    assert (itself.code, itself.problem.code, itself.problem.location) == ("AE", 102, "MRG^1^1")


def test_a47_changes_the_identifier_of_the_patient_found_by_the_prior_one():
    mapped = _mapped(adt("A47", pid(ipp="000777"), "MRG|000003^^^CHU-X&000897406&N^PI"))
    [change] = mapped.changes
    # found by either identifier: the prior one, or the new one if that message came already
    assert len(change.condition.clauses[0]) == 2
    stored = {"resourceType": "Patient", "id": "p1", "name": [{"family": "PAT-TROIS"}],
              "identifier": [{"system": "urn:relais:hl7v2:CHU-X", "value": "000003"},
                             {"system": "urn:oid:1.2.250.1.213.1.4.10", "value": "279035121518989"}]}
    renamed = change.carry(stored, change.resource)
    assert [i["value"] for i in renamed["identifier"] if i["system"] == "urn:relais:hl7v2:CHU-X"] == ["000777"]


def test_a_lab_result_never_rewrites_the_patient_adt_stored():
    """Its links and general practitioner stay: a lab result creates its Patient only if none matches."""
    from fhir_server import write
    from tests.mappers.hl7v2_samples import lab_result

    mapped = _mapped(lab_result())
    change = _change(mapped, "Patient")
    assert change.action == write.CREATE and change.condition is not None


def test_diagnoses_and_procedures_sent_in_error_are_marked_so():
    mapped = _mapped(adt("A08", pid(), pv1(),
                         segment("DG1", {1: "1", 3: "I10^Essential hypertension^I10", 6: "W", 21: "D"}),
                         segment("PR1", {1: "1", 3: "0TY00Z0^Kidney transplant^I10P", 5: "20240306", 20: "D"})))
    condition = _one(mapped, "Condition")
    assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"
    assert "clinicalStatus" not in condition
    assert _one(mapped, "Procedure")["status"] == "entered-in-error"
    # found again by visit and code: the working diagnosis it was is the one marked
    working = _one(_mapped(adt("A08", pid(), pv1(), segment("DG1", {1: "1", 3: "I10^Essential hypertension^I10",
                                                                    6: "W"}))), "Condition")
    assert working["identifier"] == condition["identifier"]
    assert working["verificationStatus"]["coding"][0]["code"] == "provisional"


def test_one_doctor_named_by_idnps_and_by_rpps_is_one_practitioner():
    by_idnps = f"8{GP_RPPS}^AGNES^Anne^^^^^^ASIP-SANTE-PS&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"
    visit = segment("PV1", {1: "1", 2: "I", 7: by_idnps, 19: "V100^^^CHU-X&000897406&M^VN"})
    mapped = _mapped(adt("A01", pid(), GP, visit))
    [doctor] = _all(mapped, "Practitioner")
    encounter = _one(mapped, "Encounter")
    assert encounter["participant"][0]["individual"]["reference"] == f"Practitioner/{doctor['id']}"
    assert doctor["telecom"][0]["value"] == "0546442221"


def test_rol_5_and_6_date_the_role():
    ended = GP.replace("||||||||^WPN", "|20200101|20231231||||||^WPN")
    team = _one(_mapped(adt("A08", pid(), ended)), "CareTeam")
    assert team["participant"][0]["period"] == {"start": "2020-01-01", "end": "2023-12-31"}


def test_a_movement_update_corrects_it_in_place():
    first = _one(_mapped(adt("A01", pid(), pv1(), zbe("M1", "20240306110000"))), "Encounter")
    fix = _change(_mapped(adt("A08", pid(), pv1(), zbe("M1", "20240306103000", action="UPDATE", unit="Chir VI",
                                                       code="6269"))), "Encounter")
    fixed = fix.carry(first, fix.resource)
    assert [(m["location"]["display"], m["status"], m["period"]) for m in fixed["location"]] == [
        ("Chir VI", "active", {"start": at("20240306103000")})]


def test_the_discharge_sample_shifted_zbe_is_read_where_it_is():
    """sortie.er7 as it is: an extra field before ZBE-4 (INSERT in ZBE-5, the unit in ZBE-8, HMS in ZBE-10)."""
    encounter = _one(_mapped(read(next(p for p in PAM if p.name == "sortie.er7")).decode()), "Encounter")
    [movement] = encounter["location"]
    assert movement["location"] == {"identifier": {"value": "8782"}, "display": "Urgences"}
    assert movement["status"] == "completed"  # the visit is finished


def test_a_later_death_flag_replaces_the_death_date_it_does_not_sit_beside_it():
    update = _change(_mapped(adt("A31", pid(extra="|" * 17 + "N"))), "Patient")
    assert update.resource["deceasedBoolean"] is False
    merged = update.carry({"resourceType": "Patient", "id": "p1", "deceasedDateTime": "2024-03-01"}, update.resource)
    assert "deceasedDateTime" not in merged and merged["deceasedBoolean"] is False
    validate(merged, "Patient")


def _bed(event: str, place: str, when: str) -> str:
    return adt(event, pid(), segment("PV1", {1: "1", 2: "I", 3: place, 19: "V100^^^CHU-X&000897406&M^VN"}), when=when)


def test_without_zbe_pv1_3_gives_the_movements():
    """IHE PAM outside France: no ZBE; A01 puts the patient in PV1-3, A02 moves them, A12 takes it back."""
    admitted = _one(_mapped(_bed("A01", "3N^301^A", "20240306080000")), "Encounter")
    assert [(m["location"]["display"], m["status"]) for m in admitted["location"]] == [("3N 301 A", "active")]
    update = _change(_mapped(_bed("A08", "3N^301^A", "20240306120000")), "Encounter")
    same = update.carry(admitted, update.resource)
    assert same["location"] == admitted["location"]  # the same place: no new movement, its start kept
    transfer = _change(_mapped(_bed("A02", "ICU^1^B", "20240307090000")), "Encounter")
    moved = transfer.carry(same, transfer.resource)
    assert [(m["location"]["display"], m["status"], m["period"]) for m in moved["location"]] == [
        ("3N 301 A", "completed", {"start": at("20240306080000"), "end": at("20240307090000")}),
        ("ICU 1 B", "active", {"start": at("20240307090000")})]
    cancel = _change(_mapped(_bed("A12", "3N^301^A", "20240307100000")), "Encounter")
    back = cancel.carry(moved, cancel.resource)
    assert [(m["location"]["display"], m["status"], m["period"]) for m in back["location"]] == [
        ("3N 301 A", "active", {"start": at("20240306080000")})]


def test_dependants_sharing_the_insureds_policy_number_have_a_coverage_each():
    policy = segment("IN1", {1: "1", 2: "AMO", 3: "CPAM75^^^CPAM", 4: "CPAM DE PARIS", 17: "CHD", 36: "1790328123456"})
    child, parent = (_one(_mapped(adt("A08", pid(ipp=ipp), policy)), "Coverage") for ipp in ("000011", "000012"))
    assert child["identifier"][0] != parent["identifier"][0]
    assert child["subscriberId"] == parent["subscriberId"] == "1790328123456"


def test_a_message_without_zfd_keeps_the_insi_query_date():
    first = _one(_mapped(read(CONSENT_SAMPLE).decode()), "Patient")
    later = _change(_mapped(adt("A08", pid(extra="|" * 19 + "QUAL"))), "Patient")
    merged = later.carry(first, later.resource)
    [reliability] = [e for e in merged["extension"] if e["url"] == IDENTITY_RELIABILITY]
    parts = {e["url"]: e for e in reliability["extension"]}
    assert parts["identityStatus"]["valueCoding"]["code"] == "QUAL"
    assert parts["dateInterrogationINSi"]["valueDate"] == "2021-12-01" and "methodCollection" in parts
    assert [e["url"] for e in merged["extension"]].count(IDENTITY_RELIABILITY) == 1
    assert DMP_STATUS in [e["url"] for e in merged["extension"]]  # the DMP status the A08 did not send stays
    validate(merged, "Patient")
