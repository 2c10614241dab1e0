"""Sending validated pre-DMPs to the national record (IHE MHD ITI-65, PDSm 3.1.1) through the outbox kind
``dmp-export``, against the loopback stand-in: success, refusal, objection, replacement, 503, hang, dead letter."""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import time
from pathlib import Path

from fhir_server.outbox import dead_letters
from predmp.pdsm import bundle_issues
from tests.predmp import records
from tests.predmp.predmpkit import platform_fixture  # noqa: F401 (fixture)

REPOSITORY = Path(__file__).resolve().parents[2]


def _validated(platform) -> dict:
    draft = platform.build().json()
    response = platform.validate(draft["id"])
    assert response.status_code == 200, response.text
    return response.json()


def _export_audits(platform, docref_id: str) -> list[dict]:
    events = platform.search("AuditEvent?type=http://dicom.nema.org/resources/ontology/DCM|110106&_count=100")
    return [e for e in events if any(x["what"]["reference"] == f"DocumentReference/{docref_id}" for x in e["entity"])]


def test_a_validated_pre_dmp_is_sent_as_a_pdsm_iti65_bundle(platform):
    final = _validated(platform)
    assert platform.state(final["id"])["status"] == "queued"
    state = platform.export_until(final["id"], lambda s: s.get("status") != "queued")
    assert state["status"] == "sent" and state["label"] == "Envoyé au DMP"
    [bundle] = platform.recipient.received
    assert bundle_issues(bundle) == [] and platform.recipient.problems == [[]]
    assert bundle["type"] == "transaction"
    kinds = [(e["resource"]["resourceType"], e["request"]["method"]) for e in bundle["entry"]]
    assert kinds == [("List", "POST"), ("DocumentReference", "POST"), ("Binary", "POST")]
    submission, reference, binary = (e["resource"] for e in bundle["entry"])
    assert {x["url"].rsplit("/", 1)[1] for x in submission["extension"]} == {
        "ihe-designationType", "ihe-sourceId", "ihe-sourcePatientId"}
    assert submission["code"]["coding"][0]["code"] == "submissionset"
    assert reference["subject"] == {"reference": "Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|279035121518989"}
    assert submission["subject"] == reference["subject"]
    assert reference["category"][0]["coding"][0]["code"] == "11"
    assert reference["type"]["coding"][0] == {"system": "http://loinc.org", "code": "60591-5",
                                              "display": "Patient summary Document"}
    assert reference["securityLabel"][0]["coding"][0]["code"] == "N"
    assert reference["masterIdentifier"]["value"].startswith("urn:oid:2.25.")
    assert reference["content"][0]["format"]["code"] == "urn:ihe:iti:xds:2017:mimeTypeSufficient"
    assert reference["context"]["period"]["start"] <= reference["context"]["period"]["end"]
    assert reference["context"]["facilityType"]["coding"][0]["code"] == "SA57"
    assert reference["context"]["practiceSetting"]["coding"][0]["code"] == "AMBULATOIRE"
    contained = {c["id"]: c for c in reference["contained"]}
    assert reference["author"] == [{"reference": "#auteur"}] and reference["authenticator"] == {"reference": "#auteur"}
    assert {"system": "https://rpps.esante.gouv.fr", "value": "10003456789"} in contained["auteur"]["identifier"]
    assert reference["custodian"] == {"reference": "#gardien"}
    data = base64.b64decode(binary["data"])
    attachment = reference["content"][0]["attachment"]
    assert attachment["size"] == len(data) and attachment["language"] == "fr-FR" and attachment["title"]
    assert attachment["hash"] == base64.b64encode(hashlib.sha1(data).digest()).decode()
    assert attachment["url"] == bundle["entry"][2]["fullUrl"]
    assert data == base64.b64decode(platform.read(final["content"][0]["attachment"]["url"])["data"])
    assert state["remoteDocumentReference"] == "DocumentReference/2"
    audits = _export_audits(platform, final["id"])
    assert [a["outcome"] for a in audits] and {a["outcomeDesc"] for a in audits} >= {"En attente d'envoi au DMP",
                                                                                      "Envoyé au DMP"}
    # a redelivered job sends nothing twice
    platform.live.store.outbox_enqueue([{"kind": "dmp-export", "document": final["id"]}])
    platform.drain()
    assert len(platform.recipient.received) == 1


def test_a_newer_validated_pre_dmp_replaces_the_older_in_the_national_record(platform):
    first = _validated(platform)
    assert platform.export_until(first["id"], lambda s: s.get("status") == "sent")["status"] == "sent"
    second = _validated(platform)
    state = platform.export_until(second["id"], lambda s: s.get("status") != "queued")
    assert state["status"] == "sent", state
    bundle = platform.recipient.received[-1]
    assert bundle_issues(bundle) == [] and platform.recipient.problems[-1] == []
    reference = bundle["entry"][1]["resource"]
    assert reference["relatesTo"][0]["code"] == "replaces"
    assert reference["relatesTo"][0]["target"]["reference"] == "DocumentReference/2"
    old = bundle["entry"][3]
    assert old["request"] == {"method": "PUT", "url": "DocumentReference/2"}
    assert old["resource"]["status"] == "superseded"
    assert old["resource"]["masterIdentifier"] == first["masterIdentifier"]
    assert platform.read(f"DocumentReference/{first['id']}")["status"] == "superseded"
    assert platform.recipient.documents["DocumentReference/2"]["status"] == "superseded"


def test_a_patient_who_objected_to_feeding_the_dmp_is_never_sent(platform):
    platform.seed([records.consent("deny")])
    final = _validated(platform)
    state = platform.export_until(final["id"], lambda s: s.get("status") != "queued")
    assert state["status"] == "refused"
    assert "le patient s'est opposé à l'alimentation de son DMP (Consent/dmp-consent)" in state["reason"]
    assert platform.recipient.received == []
    assert any(a["outcome"] == "4" and "opposé" in a["outcomeDesc"] for a in _export_audits(platform, final["id"]))


def test_a_later_permit_lifts_the_objection(platform):
    platform.seed([records.consent("deny"), {**records.consent("permit", cid="dmp-consent-2"),
                                              "dateTime": "2026-11-20T10:00:00Z"}])
    final = _validated(platform)
    assert platform.export_until(final["id"], lambda s: s.get("status") != "queued")["status"] == "sent"


def test_a_refusal_by_the_recipient_is_kept_with_its_reason(platform):
    platform.recipient.mode = "refuse"
    final = _validated(platform)
    state = platform.export_until(final["id"], lambda s: s.get("status") != "queued")
    assert state["status"] == "refused"
    assert state["reason"] == "refus du destinataire (HTTP 422) : Document refusé : le patient n'a pas de DMP actif"
    platform.drain()
    assert len(platform.recipient.received) == 1  # a refusal is not retried


def test_the_export_waits_out_a_recipient_that_is_down_or_answers_503(platform):
    platform.recipient.stop()
    final = _validated(platform)
    platform.drain()
    state = platform.state(final["id"])
    assert state["status"] == "queued" and "destinataire injoignable" in state["reason"]
    platform.recipient.start()
    platform.recipient.mode = "unavailable"
    state = platform.export_until(final["id"], lambda s: "HTTP 503" in s.get("reason", ""))
    assert state["status"] == "queued" and state["attempts"] >= 2
    platform.recipient.mode = "success"
    state = platform.export_until(final["id"], lambda s: s.get("status") == "sent")
    assert state["status"] == "sent" and "reason" not in state


def test_a_recipient_that_hangs_ends_in_the_dead_letters_after_the_retry_window(tmp_path):
    from kit.stores import make_store

    from tests.predmp.predmpkit import platform_for
    from tests.predmp.recipient import Recipient

    store = make_store("sqlite", tmp_path, durable=False)
    recipient = Recipient()
    platform = platform_for(store, recipient, dmp_timeout_s=0.5, dmp_retry_window_s=2.0)
    try:
        platform.seed(records.known_patient())
        recipient.mode = "hang"
        final = _validated(platform)
        started = time.monotonic()
        state = platform.export_until(final["id"], lambda s: s.get("status") == "dead", timeout_s=40)
        assert state["status"] == "dead", state
        assert "destinataire injoignable (TimeoutError" in state["reason"]
        assert time.monotonic() - started < 30
        letters = [doc for _, doc in dead_letters.listed(store) if doc["payload"]["kind"] == "dmp-export"]
        assert len(letters) == 1 and letters[0]["payload"]["document"] == final["id"]
        entry = "import sys; from fhir_server.cli import main; main(sys.argv[1:])"
        listed = subprocess.run([sys.executable, "-c", entry, "outbox"], capture_output=True, text=True, timeout=60,
                                cwd=REPOSITORY, env={"RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}",
                                                     "PATH": "/usr/bin:/bin"})
        assert listed.returncode == 0 and "failed: 1" in listed.stdout
        assert f'"document": "{final["id"]}"' in listed.stdout and "destinataire injoignable" in listed.stdout
        assert any(a["outcome"] == "8" for a in _export_audits(platform, final["id"]))
        # an operator puts it back (relais outbox --retry): a new window, and this time it goes
        recipient.released.set()
        recipient.mode = "success"
        dead_letters.requeue(store, dead_letters.listed(store))
        state = platform.export_until(final["id"], lambda s: s.get("status") == "sent")
        assert state["status"] == "sent"
    finally:
        platform.live.close()
        recipient.close()
        store.close()


def test_an_objection_recorded_after_validation_still_stops_the_sending(platform):
    platform.recipient.stop()
    final = _validated(platform)
    platform.drain()
    assert platform.state(final["id"])["status"] == "queued"
    # as the PAM France ZFA mapper writes it: ZFA-9 "IO", no date, policy OPTOUT
    zfa = records.consent("deny", cid="zfa-feeding")
    del zfa["dateTime"]
    zfa["policyRule"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]}
    platform.seed([zfa])
    platform.recipient.start()
    state = platform.export_until(final["id"], lambda s: s.get("status") != "queued")
    assert state["status"] == "refused" and "(Consent/zfa-feeding)" in state["reason"]
    assert platform.recipient.received == []


def test_a_hanging_recipient_costs_the_dispatcher_one_timeout_not_one_per_document(platform):
    platform.seed([records.patient("p2"), records.patient("p3")])
    finals = [_validated(platform)]
    for pid in ("p2", "p3"):
        draft = platform.build(pid).json()
        assert platform.validate(draft["id"]).status_code == 200
        finals.append(platform.read(f"DocumentReference/{draft['id']}"))
    platform.recipient.mode = "hang"
    started = time.monotonic()
    platform.drain()
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # RELAIS_DMP_TIMEOUT_S is 1 s here: one timeout, the others fail at once
    assert len(platform.recipient.received) == 1
    states = [platform.state(f["id"]) for f in finals]
    assert all(s["status"] == "queued" and "injoignable" in s["reason"] for s in states), states
    platform.recipient.released.set()
    platform.recipient.mode = "success"
    for final in finals:
        assert platform.export_until(final["id"], lambda s: s.get("status") == "sent")["status"] == "sent"
