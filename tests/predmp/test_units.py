"""The pure parts of the pre-DMP: what counts as the latest measure, its trend, the care team's order, the
French wording, the refusal decisions and the export state."""

from __future__ import annotations

from datetime import UTC, datetime

from fhir_server.codes import IDNPS
from predmp import narrative as n
from predmp.gather import care_team, latest_per_code, recent, role_of
from predmp.state import QUEUED, SENT, export_state, with_state
from predmp.validation import practitioner_id, refusal_reason
from tests.predmp import records


def test_the_latest_observation_per_code_comes_with_the_one_before_it():
    w1 = records.weight("w1", 70.2, "2026-12-01T08:00:00Z")
    w2 = records.weight("w2", 72.6, "2026-12-04T08:00:00Z")
    w0 = records.weight("w0", 69.0, "2026-11-01T08:00:00Z")
    wrong = {**records.weight("w9", 99.0, "2026-12-05T08:00:00Z"), "status": "entered-in-error"}
    bp = records.pressure("bp", 130, 80, "2026-12-03T08:00:00Z")
    pairs = latest_per_code([w1, bp, w0, w2, wrong])
    assert [(latest["id"], previous and previous["id"]) for latest, previous in pairs] == [("w2", "w1"), ("bp", None)]


def test_the_trend_says_in_french_how_the_measure_moved():
    w1 = records.weight("w1", 70.2, "2026-12-01T08:00:00Z")
    assert n.trend(records.weight("w2", 72.6, "2026-12-04T08:00:00Z"), w1).startswith(
        "en hausse de 2,4 kg depuis le 01/12/2026 à 09:00")  # Paris time
    assert n.trend(records.weight("w2", 69.7, "2026-12-04T08:00:00Z"), w1).startswith("en baisse de 0,5 kg")
    assert n.trend(records.weight("w2", 70.20, "2026-12-04T08:00:00Z"), w1).startswith("stable")
    before = records.pressure("a", 130, 80, "2026-12-01T08:00:00Z")
    assert n.trend(records.pressure("b", 140, 80, "2026-12-02T08:00:00Z"), before).startswith(
        "Systolique en hausse de 10 mmHg, Diastolique stable")
    assert n.trend(w1, None) == "première mesure connue"


def test_the_care_team_comes_in_the_order_the_coordinator_calls_with_snomed_roles_understood():
    pharmacist = {**records.practitioner("ph1", family="Roux")}
    team = {"resourceType": "CareTeam", "participant": [
        {"role": [{"coding": [{"system": "http://snomed.info/sct", "code": "46255001"}]}],
         "member": {"reference": "Practitioner/ph1"}},
        {"role": [{"text": "voisin"}], "member": {"reference": "Practitioner/x"}},
        {"member": {"reference": "Practitioner/n1"}, "role": [{"coding": [
            {"system": "http://snomed.info/sct", "code": "224535009"}]}]}]}
    known = {"ph1": pharmacist, "n1": records.nurse(), "gp1": records.practitioner(),
             "x": {**records.nurse(), "id": "x"}}
    members = care_team([team], known, records.patient())
    assert [(m.role, m.practitioner["id"]) for m in members] == [
        ("general-practitioner", "gp1"), ("nurse", "n1"), ("pharmacist", "ph1"), ("other", "x")]
    assert role_of({"role": [{"text": "voisin"}]}) == "other"


def test_recent_keeps_what_is_recent_and_open_alerts_whatever_their_age():
    since = datetime(2026, 11, 6, tzinfo=UTC)
    old_open = {**records.alert("2026-01-01T00:00:00Z"), "id": "old-open"}
    old_done = {**records.alert("2026-01-01T00:00:00Z"), "id": "old-done", "status": "completed"}
    new_done = {**records.alert("2026-12-01T00:00:00Z"), "id": "new-done", "status": "completed"}
    assert [t["id"] for t in recent([old_open, old_done, new_done], since, ("authoredOn",))] == ["new-done", "old-open"]


def test_french_wording():
    assert n.number("72.60") == "72,6" and n.number(3) == "3"
    assert n.date("2026-03-12") == "12/03/2026"
    assert n.dosage({"dosageInstruction": [{"text": "1 cp le matin"}]}) == "1 cp le matin"
    assert n.dosage({}) == "posologie non précisée"
    assert n.dosage({"dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}}]}) \
        == "1 fois toutes les 8 heures"
    assert n.identity_status(records.patient(status="QUAL")) == "QUAL"
    assert n.identity_status({"resourceType": "Patient"}) is None
    assert n.e("<b>&") == "&lt;b&gt;&amp;"


def test_who_may_validate_which_draft():
    draft = {"id": "d1", "status": "current", "docStatus": "preliminary"}
    doctor, patient = records.practitioner(), records.patient()
    assert refusal_reason(draft, ["d1"], doctor, patient) is None
    assert refusal_reason(draft, ["d1"], records.practitioner(rpps=None), patient).status == 403
    idnps = {**records.practitioner(rpps=None), "identifier": [{"system": IDNPS, "value": "810003456789"}]}
    assert refusal_reason(draft, ["d1"], idnps, patient) is None
    assert refusal_reason(draft, ["d2"], doctor, patient).status == 409
    assert refusal_reason({**draft, "docStatus": "final"}, ["d1"], doctor, patient).status == 409
    assert refusal_reason(draft, ["d1"], doctor, records.patient(status="PROV")).status == 422
    assert refusal_reason(draft, ["d1"], doctor, records.patient(ins=None)).status == 422
    assert practitioner_id({"fhirUser": "Practitioner/gp1"}) == "gp1"
    assert practitioner_id({"fhirUser": "https://relais.example/fhir/Practitioner/gp1"}) == "gp1"
    assert practitioner_id({"fhirUser": "Patient/p1"}) is None and practitioner_id(None) is None


def test_the_export_state_lives_on_the_document_reference():
    docref = {"resourceType": "DocumentReference", "id": "d1", "extension": [{"url": "other", "valueString": "x"}]}
    queued = with_state(docref, QUEUED, "2026-12-06T10:00:00Z", since="2026-12-06T10:00:00Z", attempts=0,
                        reason="nouvel essai prévu : HTTP 503")
    assert export_state(queued)["reason"] == "nouvel essai prévu : HTTP 503"
    sent = with_state(queued, SENT, "2026-12-06T10:01:00Z", remoteDocumentReference="DocumentReference/2")
    state = export_state(sent)
    assert state["status"] == "sent" and "reason" not in state and state["since"] == "2026-12-06T10:00:00Z"
    assert state["label"] == "Envoyé au DMP" and sent["extension"][0] == {"url": "other", "valueString": "x"}


def test_the_dmp_settings_are_checked_at_start():
    import pytest

    from fhir_server.config import ConfigError, load_config

    config = load_config(environ={"RELAIS_DMP_ENDPOINT": "https://dmp.example/fhir", "RELAIS_DMP_CERT": "c.pem",
                                  "RELAIS_DMP_KEY": "k.pem", "RELAIS_DMP_TIMEOUT_S": "3",
                                  "RELAIS_DMP_SOURCE_OID": "1.2.250.1.999.1"})
    assert (config.dmp_endpoint, config.dmp_timeout_s, config.dmp_source_oid) == (
        "https://dmp.example/fhir", 3.0, "1.2.250.1.999.1")
    for environ, named in (({"RELAIS_DMP_KEY": "k.pem"}, "RELAIS_DMP_KEY"),
                           ({"RELAIS_DMP_ENDPOINT": "http://dmp.example", "RELAIS_DMP_CERT": "c.pem"}, "not https"),
                           ({"RELAIS_DMP_SOURCE_OID": "urn:oid:1.2"}, "RELAIS_DMP_SOURCE_OID"),
                           ({"RELAIS_DMP_ENDPOINT": "dmp.example"}, "RELAIS_DMP_ENDPOINT")):
        with pytest.raises(ConfigError, match=named):
            load_config(environ=environ)
