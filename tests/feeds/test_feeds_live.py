"""The JSON feeds against the real app on a loopback port, with real tokens, on both stores: what a partner sees."""

from __future__ import annotations

import base64
import copy
import json
import threading
import uuid

import pytest
import requests

from fhir_server import codes
from fhir_server.search.parser import parse
from mappers import senders
from tests.access.authkit import AuthServer

from .payloads import REPORT, TELECONSULTATION, measure, telemonitoring

DEVICE_SCOPES = "system/Patient.c system/Device.c system/Observation.c"
ALL_SCOPES = ("system/Patient.c system/Device.c system/Observation.c system/Practitioner.c system/Encounter.c"
              " system/Condition.c system/MedicationRequest.c system/DocumentReference.c system/Communication.c"
              " system/QuestionnaireResponse.c")
RACERS = 6
ROUNDS = 5


@pytest.fixture
def live(store):
    server = AuthServer(store)
    yield server
    server.close()


class Partner:
    """A registered client posting to /feeds/* with its token."""

    def __init__(self, live: AuthServer, scopes: str):
        self.live = live
        self.client_id, key = live.add_client(scopes)
        self.token = live.token(self.client_id, key)

    def post(self, feed: str, body, **kw) -> requests.Response:
        data = body if isinstance(body, (str, bytes)) else json.dumps(body, ensure_ascii=False).encode()
        return self.live.http.post(f"{self.live.origin}/feeds/{feed}", data=data, **kw, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json"})


def stored(store, rtype: str) -> list[dict]:
    return [v.resource for v in store.scan(rtype, None, 10_000)]


def by_ins(store, ins: str) -> list[str]:
    return store.search(parse("Patient", [("identifier", f"{codes.INS_NIR}|{ins}")], strict=True)).ids


def test_telemonitoring_with_a_token_is_answered_per_measure_and_a_resend_is_unchanged(live, store):
    partner = Partner(live, DEVICE_SCOPES)
    doc = telemonitoring(*telemonitoring()["measures"], measure("spo2", "m9", value=120))
    first = partner.post("telemonitoring", doc)
    assert first.status_code == 200, first.text
    results = first.json()["results"]
    assert [(r["id"], r["status"]) for r in results] == [("m1", "created"), ("m2", "created"), ("m3", "created"),
                                                         ("m4", "created"), ("m9", "rejected")]
    assert "120 %" in results[4]["reason"]
    observations = {o["id"]: o for o in stored(store, "Observation")}
    assert len(observations) == 5  # the blood pressure, its pulse, weight, glucose, the fall
    panel = observations[results[0]["resource"].split("/")[1]]
    assert panel["code"]["coding"][0]["code"] == "85354-9"
    weight = observations[results[1]["resource"].split("/")[1]]
    assert weight["valueQuantity"]["value"] == 72.76 and weight["valueQuantity"]["code"] == "kg"
    (patient,) = stored(store, "Patient")
    assert patient["extension"][0]["extension"][0]["valueCoding"]["code"] == "PROV"
    assert first.json()["patient"] == f"Patient/{patient['id']}"
    (device,) = stored(store, "Device")
    assert panel["device"] == {"reference": f"Device/{device['id']}"}
    again = partner.post("telemonitoring", doc)
    assert [r["status"] for r in again.json()["results"]] == ["unchanged"] * 4 + ["rejected"]
    assert [r.get("resource") for r in again.json()["results"]] == [r.get("resource") for r in results]
    assert len(stored(store, "Observation")) == 5 and len(stored(store, "Patient")) == 1


def test_a_known_patient_is_only_referenced_and_needs_no_patient_scope(live, store):
    Partner(live, DEVICE_SCOPES).post("telemonitoring", telemonitoring(measure("spo2", value=97)))
    (patient,) = stored(store, "Patient")
    observer = Partner(live, "system/Device.c system/Observation.c")
    answer = observer.post("telemonitoring", telemonitoring(measure("spo2", "new", value=96)))
    assert answer.status_code == 200, answer.text
    assert stored(store, "Patient") == [patient]  # not rewritten: still version 1
    reporter = Partner(live, "system/Communication.c")
    first = reporter.post("report", REPORT)
    assert first.status_code == 200, first.text
    assert reporter.post("report", REPORT).json() == first.json()  # a resend too: the patient is only found
    stranger = observer.post("telemonitoring", telemonitoring(measure("spo2", value=95), patient={
        "ins": "148017512345698"}))
    assert stranger.status_code == 403
    outcome = stranger.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "forbidden"
    assert "Patient" in outcome["issue"][0]["diagnostics"]
    assert len(stored(store, "Patient")) == 1


def test_without_token_401_without_scopes_403_bad_input_400_naming_the_field(live, store):
    anonymous = live.http.post(f"{live.origin}/feeds/report", json=REPORT)
    assert anonymous.status_code == 401 and anonymous.json()["resourceType"] == "OperationOutcome"
    reader = Partner(live, "system/Patient.rs system/Communication.rs")
    forbidden = reader.post("report", REPORT)
    assert forbidden.status_code == 403 and forbidden.json()["issue"][0]["code"] == "forbidden"
    partner = Partner(live, ALL_SCOPES)
    for feed, body, field in [
        ("report", "{not json", None),
        ("report", {**REPORT, "channel": "pigeon"}, "channel"),
        ("teleconsultation", {**TELECONSULTATION, "practitioner": {"rpps": "12"}}, "practitioner.rpps"),
        ("telemonitoring", telemonitoring(measure("weight", unit="kg")), "measures[0].value"),
        ("telemonitoring", [1, 2], None),
    ]:
        answer = partner.post(feed, body)
        assert answer.status_code == 400, (feed, answer.text)
        assert answer.headers["Content-Type"].startswith("application/fhir+json")
        issue = answer.json()["issue"][0]
        assert issue["code"] == "invalid" and issue.get("expression", [None]) == [field]
    assert stored(store, "Communication") == [] and stored(store, "Patient") == []
    unknown = partner.post("report", {**REPORT, "id": "r-unknown", "patient": {"id": "nobody"}})
    assert unknown.status_code == 422 and unknown.json()["issue"][0]["expression"] == ["patient.id"]


def test_two_feeds_racing_on_the_same_new_ins_make_one_patient(live, store):
    """Feeds of several partners (telemonitoring, reports) released at once on each new INS: one Patient each."""
    partners = [Partner(live, ALL_SCOPES) for _ in range(RACERS)]
    for round_ in range(ROUNDS):
        ins = f"2480175{round_:02d}3456{round_:02d}"
        payloads = [("telemonitoring", telemonitoring(measure("spo2", f"r{round_}", value=97), patient={"ins": ins}))
                    if n % 2 else ("report", {**REPORT, "id": f"race-{round_}-{n}", "patient": {"ins": ins}})
                    for n in range(RACERS)]
        barrier = threading.Barrier(RACERS)
        answers: list[requests.Response] = []

        def send(partner: Partner, feed: str, body: dict, barrier: threading.Barrier, answers: list) -> None:
            barrier.wait()
            answers.append(partner.post(feed, body))

        threads = [threading.Thread(target=send, args=(p, *payload, barrier, answers))
                   for p, payload in zip(partners, payloads, strict=True)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert [a.status_code for a in answers] == [200] * RACERS, [a.text for a in answers]
        (patient_id,) = by_ins(store, ins)
        assert {a.json()["patient"] for a in answers} == {f"Patient/{patient_id}"}
    patients = {p["id"] for p in stored(store, "Patient")}
    assert len(patients) == ROUNDS
    # and what each feed wrote names that Patient, not one it meant to create
    subjects = {r["subject"]["reference"] for t in ("Observation", "Communication") for r in stored(store, t)}
    assert subjects == {f"Patient/{p}" for p in patients}


def test_teleconsultation_is_one_transaction_with_the_practitioner_found_by_rpps(live, store):
    partner = Partner(live, ALL_SCOPES)
    doctor = {"resourceType": "Practitioner", "identifier": [{"system": codes.RPPS, "value": "10101234567"}],
              "name": [{"family": "Durand", "given": ["Claire"], "prefix": ["Dr"]}]}
    admin = live.client_token("system/Practitioner.cru")
    known = live.request("POST", "Practitioner", admin, json=doctor)
    assert known.status_code == 201, known.text
    answer = partner.post("teleconsultation", TELECONSULTATION)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["id"] == "tc-2026-0042" and body["status"] == "created"
    assert {"resource": f"Practitioner/{known.json()['id']}", "status": "unchanged"} in body["resources"]
    (visit,) = stored(store, "Encounter")
    assert visit["class"]["code"] == "VR"
    assert visit["participant"][0]["individual"]["reference"] == f"Practitioner/{known.json()['id']}"
    (document,) = stored(store, "DocumentReference")
    assert base64.b64decode(document["content"][0]["attachment"]["data"]).decode() == TELECONSULTATION["report"]
    for rtype in ("Condition", "MedicationRequest"):
        (resource,) = stored(store, rtype)
        assert resource["encounter"] == {"reference": f"Encounter/{visit['id']}"}
    assert stored(store, "Practitioner")[0]["name"][0]["prefix"] == ["Dr"]  # found, not rewritten
    resent = partner.post("teleconsultation", TELECONSULTATION)
    assert resent.status_code == 200 and resent.json() == body  # the same answer, nothing written
    assert len(stored(store, "Encounter")) == 1
    reused = partner.post("teleconsultation", {**TELECONSULTATION, "report": "autre chose"})
    assert reused.status_code == 409 and reused.json()["issue"][0]["details"]["text"] == "key-reused"


def test_a_report_keeps_accents_emoji_and_10_kb_as_sent_and_a_tablet_questionnaire_too(live, store):
    partner = Partner(live, ALL_SCOPES + " system/Communication.r system/QuestionnaireResponse.r")
    text = "Mme Lefèvre a très mal 😟💔 « ça serre » — " + "elle est essoufflée. " * 480
    assert len(text.encode()) > 10_000
    answer = partner.post("report", {**REPORT, "text": text})
    assert answer.status_code == 200, answer.text
    read = live.request("GET", answer.json()["resource"], partner.token)
    assert read.json()["payload"] == [{"contentString": text}]
    tablet = {**REPORT, "id": "tab-1", "channel": "tablet", "author": {"role": "patient"},
              "questionnaire": "https://relais.example/fhir/Questionnaire/suivi", "text": "J'ai du mal à respirer 😮‍💨",
              "answers": [{"question": "dyspnee", "answer": "oui"}]}
    answer = partner.post("report", tablet)
    assert answer.status_code == 200 and answer.json()["resource"].startswith("QuestionnaireResponse/")
    response = live.request("GET", answer.json()["resource"], partner.token).json()
    assert [i["answer"][0]["valueString"] for i in response["item"]] == ["oui", "J'ai du mal à respirer 😮‍💨"]


def test_the_sender_names_patients_only_in_systems_it_registered(live, store):
    partner = Partner(live, ALL_SCOPES)
    ours = {"system": "urn:oid:1.2.250.1.999.1", "value": "ACME-42"}
    refused = partner.post("report", {**REPORT, "patient": {"identifier": ours}})
    assert refused.status_code == 422
    assert refused.json()["issue"][0]["expression"] == ["patient.identifier.system"]
    senders.register(store, partner.client_id, ours["system"])
    accepted = partner.post("report", {**REPORT, "id": "sms-8813", "patient": {"identifier": ours}})
    assert accepted.status_code == 200, accepted.text
    again = partner.post("telemonitoring", telemonitoring(measure("spo2", value=97), patient={"identifier": ours}))
    assert again.json()["patient"] == accepted.json()["patient"]
    (patient,) = stored(store, "Patient")
    assert patient["identifier"] == [ours]


def test_the_schemas_are_published(live):
    for feed in ("telemonitoring", "teleconsultation", "report"):
        answer = live.http.get(f"{live.origin}/feeds/{feed}/schema")  # public: no token
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith("application/schema+json")
        assert answer.json()["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert live.http.get(f"{live.origin}/feeds/nothing/schema").status_code == 404


def test_relais_feeds_lists_every_payload_and_the_rejected_ones(live, store, monkeypatch, capsys):
    from fhir_server import cli

    partner = Partner(live, ALL_SCOPES)
    partner.post("report", REPORT)
    partner.post("report", "{broken")
    partner.post("telemonitoring", telemonitoring(measure("spo2", "a", value=97), measure("spo2", "b", value=130)))
    monkeypatch.setattr("fhir_server.store.open_store", lambda *a, **k: store)
    monkeypatch.setattr(store, "close", lambda: None)

    def run(*argv: str) -> list[dict]:
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(argv))
        assert exit_.value.code == 0
        return [json.loads(line) for line in capsys.readouterr().out.splitlines()]

    listed = run("feeds")
    assert [(d["feed"], d["outcome"]) for d in listed] == [("report", "accepted"), ("report", "refused"),
                                                           ("telemonitoring", "partial")]
    assert "raw" not in listed[0] and listed[0]["written"] and listed[0]["sender"] == partner.client_id
    rejected = run("feeds", "--rejected", "--raw")
    assert [d["outcome"] for d in rejected] == ["refused", "partial"]
    assert rejected[0]["raw"] == "{broken" and rejected[0]["reason"]["reason"] == "invalid"
    assert rejected[1]["ack"]["body"]["results"][1]["status"] == "rejected"
    client = copy.copy(partner.client_id)
    assert run("feeds", "systems", client, "--add", "urn:x") == [{"client_id": client, "patient_systems": ["urn:x"]}]
    assert senders.patient_systems(store, client) == ("urn:x",)
    assert uuid.UUID(client)


def test_ids_with_search_syntax_in_them_are_found_again(live, store):
    partner = Partner(live, DEVICE_SCOPES)
    odd = telemonitoring(measure("spo2", "m,1|x$\\y", value=97), device={"id": "SN|7,b"})
    assert [r["status"] for r in partner.post("telemonitoring", odd).json()["results"]] == ["created"]
    assert [r["status"] for r in partner.post("telemonitoring", odd).json()["results"]] == ["unchanged"]
    assert len(stored(store, "Observation")) == 1 and len(stored(store, "Device")) == 1


def test_a_payload_over_the_body_limit_is_413_and_its_start_is_kept(store):
    server = AuthServer(store, max_body_bytes=4000)
    try:
        partner = Partner(server, ALL_SCOPES)
        answer = partner.post("report", {**REPORT, "text": "é" * 5000})
        assert answer.status_code == 413 and answer.json()["resourceType"] == "OperationOutcome"
        [(_, record)] = list(store.kv_list("report_messages"))
        assert record["truncated"] and record["raw"].startswith('{"id": "sms-8812"')
        assert record["reason"]["reason"] == "not-stored" and record["outcome"] == "refused"
    finally:
        server.close()
