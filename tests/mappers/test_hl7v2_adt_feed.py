"""ADT against the real app: a merge and an identifier change over MLLP, resends and corrections over
POST /hl7v2, then read back over the FHIR API as the coordinator's screen and triage read them."""

from __future__ import annotations

import pytest

from fhir_server.codes import CARE_ROLE_SYSTEM, DMP_FEEDING, RPPS
from tests.mappers.adt_samples import GP_RPPS, adt, pid, pv1, zbe
from tests.mappers.hl7v2_samples import PAM, ack_fields, read
from tests.mappers.test_hl7v2_feed import ER7, Hub

CONSENT_SAMPLE = next(p for p in PAM if p.name == "consent-consultation-non-opposition.er7")
OBJECTION_SAMPLE = next(p for p in PAM if p.name == "no-consent-opposition.er7")
OLD, SURVIVOR = "000003", "000009"


@pytest.fixture
def hub(store):
    running = Hub(store)
    yield running
    running.close()


def _patient(hub, ipp: str):
    [found] = [v for v in hub.store.scan("Patient", None, 100)
               if any(i["value"] == ipp for i in v.resource.get("identifier", []))]
    return found


def _versions(hub) -> dict:
    return {(t, v.id): v.version for t in ("Patient", "Encounter", "Observation", "Consent")
            for v in hub.store.scan(t, None, 100)}


def test_a_merge_keeps_the_old_patients_data_reachable_from_the_survivor(hub):
    sender = hub.sender()
    admission = adt("A01", pid(ipp=OLD), pv1("V1"), zbe("M1", "20240306110000"),
                    "OBX|1|NM|29463-7^Body weight^LN||72.5|kg^kg^UCUM|||||F|||20240306100000",
                    "AL1|1|DA|1191^Aspirin^RXNORM|SV", control="M-1")
    assert ack_fields(sender.send(admission))["code"] == "AA"
    assert ack_fields(sender.send(adt("A28", pid(ipp=SURVIVOR, family="SURVIVANT"), control="M-2")))["code"] == "AA"
    merge = adt("A40", pid(ipp=SURVIVOR, family="SURVIVANT"), f"MRG|{OLD}^^^CHU-X&000897406&N^PI", control="M-3")
    first_ack = sender.send(merge)
    assert ack_fields(first_ack)["code"] == "AA"
    old, survivor = _patient(hub, OLD), _patient(hub, SURVIVOR)
    assert old.resource["active"] is False
    assert old.resource["link"] == [{"other": {"reference": f"Patient/{survivor.id}"}, "type": "replaced-by"}]
    assert old.resource["name"][0]["family"] == "PAT-TROIS"  # the old patient's own data stay
    assert survivor.resource["link"] == [{"other": {"reference": f"Patient/{old.id}"}, "type": "replaces"}]
    # the merge sent again: the same ACK, nothing written
    before = _versions(hub)
    assert sender.send(merge) == first_ack and _versions(hub) == before
    # a later update of the survivor keeps its link (an empty field changes nothing)
    assert ack_fields(sender.send(adt("A31", pid(ipp=SURVIVOR, family="SURVIVANT-B"), control="M-4")))["code"] == "AA"
    survivor = _patient(hub, SURVIVOR)
    assert survivor.resource["name"][0]["family"] == "SURVIVANT-B"
    assert survivor.resource["link"][0]["type"] == "replaces"
    # Patient/{survivor}/$everything follows the link: the merged-away patient and its visit, weight and allergy
    token = hub.server.client_token("system/*.rs")
    bundle = hub.server.request("GET", f"/Patient/{survivor.id}/$everything", token).json()
    found = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    encounter = hub.store.scan("Encounter", None, 10)[0]
    assert encounter.resource["subject"]["reference"] == f"Patient/{old.id}"
    assert {("Patient", survivor.id), ("Patient", old.id), ("Encounter", encounter.id)} <= found
    assert {"Observation", "AllergyIntolerance"} <= {kind for kind, _ in found}
    # the visit goes on under the survivor: its discharge moves the Encounter to it (not a reused visit number)
    discharge = adt("A03", pid(ipp=SURVIVOR, family="SURVIVANT-B"), pv1("V1"), control="M-6")
    assert ack_fields(sender.send(discharge))["code"] == "AA"
    [encounter] = hub.store.scan("Encounter", None, 10)
    assert encounter.resource["subject"]["reference"] == f"Patient/{survivor.id}"
    assert encounter.resource["status"] == "finished"
    # another patient's message naming that visit number is still refused
    stranger = adt("A08", pid(ipp="000444", family="AUTRE"), pv1("V1"), control="M-7")
    assert ack_fields(sender.send(stranger))["code"] == "AE"
    # a merge of a patient never seen here records it, inactive and replaced, for the messages still to come
    unknown = adt("A40", pid(ipp=SURVIVOR, family="SURVIVANT-B"), "MRG|000555^^^CHU-X&000897406&N^PI", control="M-5")
    assert ack_fields(sender.send(unknown))["code"] == "AA"
    placeholder = _patient(hub, "000555")
    assert placeholder.resource["active"] is False and placeholder.resource["link"][0]["type"] == "replaced-by"
    assert len(_patient(hub, SURVIVOR).resource["link"]) == 2
    sender.close()


def test_an_identifier_change_renames_the_patient_it_does_not_make_another(hub):
    sender = hub.sender()
    assert ack_fields(sender.send(adt("A28", pid(ipp=OLD), control="I-1")))["code"] == "AA"
    change = adt("A47", pid(ipp="000777"), f"MRG|{OLD}^^^CHU-X&000897406&N^PI", control="I-2")
    assert ack_fields(sender.send(change))["code"] == "AA"
    [patient] = hub.store.scan("Patient", None, 10)
    local = [i["value"] for i in patient.resource["identifier"] if i["system"] == "urn:relais:hl7v2:CHU-X"]
    assert local == ["000777"] and patient.version == 2
    assert ack_fields(sender.send(adt("A08", pid(ipp="000777", family="X"), pv1(), control="I-3")))["code"] == "AA"
    assert len(hub.store.scan("Patient", None, 10)) == 1
    sender.close()


def test_resends_and_corrections_over_http_update_what_they_wrote(hub):
    live = hub.server
    token = live.client_token(" ".join(["system/Patient.cu system/Encounter.cu system/Practitioner.cu",
                                        "system/CareTeam.cu system/Consent.cu"]))
    headers = {**ER7, "Authorization": f"Bearer {token}"}

    def post(body: bytes) -> str:
        answer = live.http.post(live.origin + "/hl7v2", data=body, headers=headers)
        assert answer.status_code == 200
        return answer.text

    first = post(read(CONSENT_SAMPLE))
    assert ack_fields(first)["code"] == "AA"
    counts = {t: hub.count(t) for t in ("Patient", "Encounter", "Practitioner", "CareTeam", "Consent")}
    assert counts == {"Patient": 1, "Encounter": 1, "Practitioner": 2, "CareTeam": 1, "Consent": 2}
    assert post(read(CONSENT_SAMPLE)) == first  # a resend: the same ACK, nothing more
    assert {t: hub.count(t) for t in counts} == counts
    # the patient objects at the next stay: the same Consents now deny, no new doctor, team or patient
    assert ack_fields(post(read(OBJECTION_SAMPLE)))["code"] == "AA"
    assert {t: hub.count(t) for t in counts} == {**counts, "Encounter": 2}
    consents = {v.resource["category"][0]["coding"][0]["code"]: v for v in hub.store.scan("Consent", None, 10)}
    assert consents[DMP_FEEDING].version == 2 and consents[DMP_FEEDING].resource["provision"]["type"] == "deny"
    # triage's reading: the patient's CareTeam, whom to call first, and their phone
    reader = live.client_token("system/*.rs")
    [patient] = hub.store.scan("Patient", None, 10)
    # as triage's worklist asks
    teams = live.request("GET", f"/CareTeam?patient=Patient/{patient.id}&status=active", reader).json()
    [team] = [e["resource"] for e in teams["entry"]]
    first_call = team["participant"][0]
    assert {"system": CARE_ROLE_SYSTEM, "code": "general-practitioner", "display": "Médecin traitant"} in \
        first_call["role"][0]["coding"]
    doctor = live.request("GET", f"/{first_call['member']['reference']}", reader).json()
    assert {"system": RPPS, "value": GP_RPPS}.items() <= doctor["identifier"][0].items()
    assert doctor["telecom"][0]["value"] == "0546442221"
    by_rpps = live.request("GET", f"/Practitioner?identifier={RPPS}|{GP_RPPS}", reader).json()
    assert by_rpps["total"] == 1
    # a later A08 without PD1 or ROL keeps the médecin traitant
    later = adt("A08", pid(), pv1("000897406"), control="H-3").encode()
    assert ack_fields(post(later))["code"] == "AA"
    assert hub.count("Encounter") == 2  # the first stay's visit number: that Encounter, updated
    [patient] = hub.store.scan("Patient", None, 10)
    assert patient.resource["generalPractitioner"][0]["identifier"]["value"] == GP_RPPS
