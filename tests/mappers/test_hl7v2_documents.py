"""CI-SIS documents against the real app: a lab's ORU^R01 (PRT, ED) over MLLP and a radiology MDM over
POST /hl7v2, each sent initial -> replacement -> deletion, on both stores."""

from __future__ import annotations

import base64

import pytest

from mappers.hl7v2 import feed
from tests.mappers.hl7v2_samples import FULL_SCOPES, HL7V2, ack_fields
from tests.mappers.test_hl7v2_feed import ER7, Hub

CISIS = HL7V2 / "ans-cisis"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"


def cisis(name: str, control_id: str) -> str:
    """A shared CI-SIS sample with its own MSH-10 (the samples all say 015: a sender numbers its messages)."""
    text = (CISIS / name).read_text(encoding="utf-8")
    lines = text.replace("\r\n", "\r").replace("\n", "\r").split("\r")
    fields = lines[0].split("|")
    fields[9] = control_id
    return "\r".join(["|".join(fields), *lines[1:]])


def current(store, rtype: str) -> list[dict]:
    return [v.resource for v in store.scan(rtype, None, 1000) if not v.deleted]


def by_status(store) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for doc in current(store, "DocumentReference"):
        found.setdefault(doc["status"], []).append(doc)
    return found


@pytest.fixture
def hub(store):
    running = Hub(store)
    yield running
    running.close()


def test_a_lab_report_sent_replaced_and_deleted_over_mllp(hub):
    sender = hub.sender()
    ack = ack_fields(sender.send(cisis("oru-cr-bio-initial-n1-n3.hl7", "ORU-1")))
    assert (ack["code"], ack["control_id"], ack["err"]) == ("AA", "ORU-1", None)
    [first] = current(hub.store, "DocumentReference")
    assert first["status"] == "current" and first["docStatus"] == "final"
    assert first["type"]["coding"][0] == {"system": "http://loinc.org", "code": "11502-2",
                                          "display": "CR d'examens biologiques"}
    [patient] = current(hub.store, "Patient")
    assert first["subject"]["reference"] == f"Patient/{patient['id']}"
    # the CDA (N1 and N3 representations) is kept whole in Binaries the attachments point at
    assert len(first["content"]) == 2
    binary_id = first["content"][0]["attachment"]["url"].split("/")[1]
    binary = hub.store.read("Binary", binary_id).resource
    assert base64.b64decode(binary["data"]) == b"Document medcial au format CDA niveau 1"
    assert binary["contentType"] == "text/xml"
    # author from PRT SB: the professional by IDNPS, the lab by FINESS; recipients from PRT RCT
    practitioners = {p["identifier"][0]["value"]: p for p in current(hub.store, "Practitioner")}
    [lab] = current(hub.store, "Organization")
    assert {"system": "https://finess.esante.gouv.fr", "value": "120459876"} in lab["identifier"]
    assert {a["reference"] for a in first["author"]} == {
        f"Practitioner/{practitioners['801234567866']['id']}", f"Organization/{lab['id']}"}
    assert practitioners["801234567866"]["identifier"][0]["system"] == IDNPS
    recipients = {e["valueReference"]["reference"] for e in first["extension"] if "valueReference" in e}
    assert recipients == {f"Practitioner/{practitioners['801234567897']['id']}", f"Patient/{patient['id']}"}
    [metadata] = [e for e in first["extension"] if "extension" in e]
    flags = {e["url"]: e.get("valueBoolean", e.get("valueString")) for e in metadata["extension"]}
    assert flags["DESTDMP"] is True and flags["MASQUE_PS"] is False and flags["REPLY"].endswith("mssante.fr")
    # every ORU gives a DiagnosticReport, which the document presents
    [report] = current(hub.store, "DiagnosticReport")
    assert report["status"] == "final" and report["code"]["coding"][0]["code"] == "11502-2"
    assert first["context"]["related"] == [{"reference": f"DiagnosticReport/{report['id']}"}]
    assert {f["url"] for f in report["presentedForm"]} == {c["attachment"]["url"] for c in first["content"]}

    # the same report sent again under another control id updates, never duplicates
    assert ack_fields(sender.send(cisis("oru-cr-bio-initial-n1-n3.hl7", "ORU-1b")))["code"] == "AA"
    assert [d["id"] for d in current(hub.store, "DocumentReference")] == [first["id"]]
    assert len(current(hub.store, "Practitioner")) == 2 and len(current(hub.store, "DiagnosticReport")) == 1

    # replacement (OBX-11 C): the first is superseded, the new one replaces it
    assert ack_fields(sender.send(cisis("oru-cr-bio-replace-n1-n3.er7", "ORU-2")))["code"] == "AA"
    docs = by_status(hub.store)
    [old], [new] = docs["superseded"], docs["current"]
    assert old["id"] == first["id"]
    assert new["relatesTo"] == [{"code": "replaces", "target": {"reference": f"DocumentReference/{first['id']}"}}]
    [report] = current(hub.store, "DiagnosticReport")
    assert report["status"] == "corrected"

    # deletion (OBX-11 D): the current version is entered in error, the superseded one stays
    deletion = cisis("oru-cr-bio-delete-n1-n3.er7", "ORU-3")
    assert ack_fields(sender.send(deletion))["code"] == "AA"
    docs = by_status(hub.store)
    assert [d["id"] for d in docs["entered-in-error"]] == [new["id"]]
    assert [d["id"] for d in docs["superseded"]] == [old["id"]] and "current" not in docs
    assert hub.store.read("DocumentReference", new["id"]).resource["docStatus"] == "entered-in-error"
    [report] = current(hub.store, "DiagnosticReport")
    assert report["status"] == "entered-in-error"
    # a resend of the deletion gets the stored ACK; every message is on record
    assert ack_fields(sender.send(deletion))["code"] == "AA"
    assert [r["control_id"] for _, r in feed.records(hub.store)] == ["ORU-1", "ORU-1b", "ORU-2", "ORU-3"]
    assert len(current(hub.store, "DocumentReference")) == 2
    sender.close()


def test_a_radiology_report_sent_replaced_and_deleted_over_http(store):
    hub = Hub(store)
    live = hub.server
    try:
        token = live.client_token(FULL_SCOPES)

        def post(text: str) -> dict:
            response = live.http.post(live.origin + "/hl7v2", data=text.encode(),
                                      headers={**ER7, "Authorization": f"Bearer {token}"})
            assert response.status_code == 200
            return ack_fields(response.text)

        ack = post(cisis("mdm-cr-radio-initial-n1.er7", "MDM-1"))
        assert (ack["code"], ack["type"]) == ("AA", "ACK^T02^ACK")
        [first] = current(store, "DocumentReference")
        assert first["masterIdentifier"]["value"] == "1.2.250.1.71.4.2.2.120456789.A71024000081"
        assert first["docStatus"] == "final"  # TXA-17 LA: legally authenticated
        author = store.read("Practitioner", first["author"][0]["reference"].split("/")[1]).resource
        assert author["identifier"][0] == {"system": "https://rpps.esante.gouv.fr", "value": "801234564895"}
        assert first["authenticator"] == first["author"][0]  # TXA-22 is the author
        binary = store.read("Binary", first["content"][0]["attachment"]["url"].split("/")[1]).resource
        assert base64.b64decode(binary["data"]).startswith(b"<ClinicalDocument")

        # T10: TXA-13 names the parent, but the sample's lacks a dot (120456789A71...): no current document has
        # that number, and the replacement is refused with the reason rather than stored as an orphan
        replacement = cisis("mdm-cr-radio-replace-n1.er7", "MDM-2")
        refused = post(replacement)
        assert refused["code"] == "AE" and "TXA^1" in refused["err"] and "DocumentReference" in refused["err"]
        assert by_status(store).keys() == {"current"}
        fixed = replacement.replace("120456789A71024000081", "120456789.A71024000081").replace("|MDM-2|", "|MDM-2b|")
        assert post(fixed)["code"] == "AA"
        # the same replacement under another control id: the parent TXA-13 names is superseded again, nothing new
        assert post(fixed.replace("|MDM-2b|", "|MDM-2c|"))["code"] == "AA"
        docs = by_status(store)
        [old], [new] = docs["superseded"], docs["current"]
        assert old["id"] == first["id"]
        assert new["masterIdentifier"]["value"] == "1.2.250.1.71.4.2.2.120456789.A71024000082"
        assert new["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{first['id']}"

        assert post(cisis("mdm-cr-radio-delete-n1.er7", "MDM-3"))["code"] == "AA"  # T04, OBX-11 D
        assert post(cisis("mdm-cr-radio-delete-n1.er7", "MDM-3b"))["code"] == "AA"  # TXA-12 names it: again, same
        docs = by_status(store)
        assert [d["id"] for d in docs["entered-in-error"]] == [new["id"]]
        assert [d["id"] for d in docs["superseded"]] == [old["id"]]
        # a DocumentReference search finds them by their document number
        found = live.request("GET", "DocumentReference?identifier=1.2.250.1.71.4.2.2.120456789.A71024000082",
                             live.client_token("system/DocumentReference.rs"))
        assert found.status_code == 200 and [e["resource"]["id"] for e in found.json()["entry"]] == [new["id"]]
    finally:
        hub.close()


def test_a_replacement_of_a_document_never_received_is_an_ae_and_kept(hub):
    sender = hub.sender()
    ack = ack_fields(sender.send(cisis("mdm-cr-radio-replace-n1.er7", "ORPHAN-1")))
    assert ack["code"] == "AE" and "DocumentReference" in ack["err"]
    assert current(hub.store, "DocumentReference") == []
    [(_, record)] = feed.records(hub.store, rejected_only=True)
    assert record["control_id"] == "ORPHAN-1"
    sender.close()


def test_billing_messages_are_refused_and_recorded(hub):
    sender = hub.sender()
    for number, kind in enumerate(("BAR^P01^BAR_P01", "DFT^P03^DFT_P03"), 1):
        message = "\r".join([
            f"MSH|^~\\&|GAM|CHU-X|RELAIS|HUB|20261120081500||{kind}|BILL{number}|P|2.5",
            "EVN|P01|20261120081500",
            "PID|1||P1^^^CHU-X^PI||MARTIN^HELENE||19550412|F",
        ])
        ack = ack_fields(sender.send(message))
        assert ack["code"] == "AR" and "billing messages are not accepted" in ack["err"] and "200" in ack["err"]
    rejected = feed.records(hub.store, rejected_only=True)
    assert [r["control_id"] for _, r in rejected] == ["BILL1", "BILL2"]
    assert current(hub.store, "Patient") == []
    sender.close()


def test_a_lab_report_finds_the_admitted_patient_and_leaves_what_adt_stored(hub):
    sender = hub.sender()
    admission = (HL7V2 / "ans-pam-fr" / "admission.er7").read_bytes()
    assert ack_fields(sender.send(admission))["code"] == "AA"
    [admitted] = current(hub.store, "Patient")
    assert ack_fields(sender.send(cisis("oru-cr-bio-initial-n1-n3.hl7", "ORU-ADT")))["code"] == "AA"
    # the lab's PID names the patient by INS only: the Patient ADT stored is found, not replaced (its IPP,
    # which the next ADT message finds it by, stays)
    [patient] = current(hub.store, "Patient")
    assert patient["id"] == admitted["id"]
    assert [i for i in admitted["identifier"] if i["value"] == "000003"][0] in patient["identifier"]
    assert patient["address"] == admitted["address"]
    [document] = current(hub.store, "DocumentReference")
    assert document["subject"]["reference"] == f"Patient/{admitted['id']}"
    sender.close()
