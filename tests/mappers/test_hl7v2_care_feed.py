"""Care messages beyond ADT against the real app over MLLP, both stores: a resend or a correction updates
what the first message stored, never duplicates it."""

from __future__ import annotations

import pytest

from mappers.hl7v2 import feed
from tests.mappers import hl7v2_care_samples as care
from tests.mappers.hl7v2_samples import ack_fields
from tests.mappers.test_hl7v2_feed import Hub


@pytest.fixture
def hub(store):
    running = Hub(store)
    yield running
    running.close()


def stored(hub: Hub, rtype: str) -> list[dict]:
    return [v.resource for v in hub.store.scan(rtype, None, 1000) if not v.deleted]


def test_each_message_type_stored_then_corrected_in_place(hub):
    sender = hub.sender()

    def send(text: str) -> None:
        ack = ack_fields(sender.send(text))
        assert ack["code"] == "AA", ack

    send(care.orm("ORM1"))
    send(care.orm("ORM2", control="CA", status=""))  # the order cancelled
    [request] = stored(hub, "ServiceRequest")
    assert request["status"] == "revoked" and request["identifier"][0]["value"] == "PL123"

    send(care.ref("REF1"))
    send(care.ref("REF2", status="A^Accepted"))
    referrals = [r for r in stored(hub, "ServiceRequest") if r.get("category")]
    assert len(referrals) == 1 and referrals[0]["status"] == "active"

    send(care.vxu("VXU1"))
    send(care.vxu("VXU1-again"))  # the same record sent again under another control id
    [immunization] = stored(hub, "Immunization")
    send(care.vxu("VXU2", action="D"))
    [deleted] = stored(hub, "Immunization")
    assert deleted["id"] == immunization["id"] and deleted["status"] == "entered-in-error"

    send(care.rde("RDE1"))
    send(care.rde("RDE2", control="DC"))
    [prescription] = stored(hub, "MedicationRequest")
    assert prescription["status"] == "stopped"
    send(care.rds("RDS1"))
    [dispense] = stored(hub, "MedicationDispense")
    assert dispense["authorizingPrescription"][0]["identifier"]["value"] == prescription["identifier"][0]["value"]

    send(care.ppr("PPR1"))
    send(care.ppr("PPR2", "PC2", "UP", "R^Resolved"))
    [condition] = stored(hub, "Condition")
    assert condition["clinicalStatus"]["coding"][0]["code"] == "resolved"
    send(care.ppr("PPR3", "PC3", "DE"))
    [condition] = stored(hub, "Condition")
    assert condition["verificationStatus"]["coding"][0]["code"] == "entered-in-error"

    send(care.siu("SIU1"))
    send(care.siu("SIU2", "S13", start="20261126090000"))  # rescheduled
    [appointment] = stored(hub, "Appointment")
    assert appointment["start"] == "2026-11-26T09:00:00+01:00"
    send(care.siu("SIU3", "S15"))
    [appointment] = stored(hub, "Appointment")
    assert appointment["status"] == "cancelled"

    # one patient, one ordering professional: named in every message, created once
    assert len(stored(hub, "Patient")) == 1
    assert [p["identifier"][0]["value"] for p in stored(hub, "Practitioner")] == ["801234567897", "80123456780"]
    assert all(r["outcome"] == "AA" for _, r in feed.records(hub.store))
    sender.close()


def test_one_new_professional_named_from_several_connections_at_once_is_one_practitioner(hub):
    from tests.mappers.test_hl7v2_feed import _send_from_connections

    def order(worker: int, number: int) -> str:
        return care.orm(f"CO{worker}-{number}").replace("PL123", f"PL{worker}{number}").replace(
            "P100^^^", f"P10{worker}^^^").replace("V100^^^", f"V10{worker}^^^")

    messages = [[order(w, n) for n in range(3)] for w in range(4)]
    codes = _send_from_connections(hub, messages)
    assert codes == ["AA"] * 12, [r["reason"] for _, r in feed.records(hub.store, rejected_only=True)]
    [practitioner] = stored(hub, "Practitioner")
    requests = stored(hub, "ServiceRequest")
    assert len(requests) == 12 and len(stored(hub, "Patient")) == 4
    # no reference names the id a raced create would have had
    assert {r["requester"]["reference"] for r in requests} == {f"Practitioner/{practitioner['id']}"}
    patients = {f"Patient/{p['id']}" for p in stored(hub, "Patient")}
    assert {r["subject"]["reference"] for r in requests} == patients


def test_one_new_patient_reported_on_from_several_connections_at_once_is_one_patient(hub):
    from tests.mappers.test_hl7v2_feed import _send_from_connections

    messages = [[care.ppr(f"NP{w}-{n}").replace("PRB77", f"PRB{w}{n}") for n in range(3)] for w in range(4)]
    codes = _send_from_connections(hub, messages)
    assert codes == ["AA"] * 12, [r["reason"] for _, r in feed.records(hub.store, rejected_only=True)]
    [patient] = stored(hub, "Patient")
    [encounter] = stored(hub, "Encounter")
    conditions = stored(hub, "Condition")
    assert {c["subject"]["reference"] for c in conditions} == {f"Patient/{patient['id']}"}
    assert {c["encounter"]["reference"] for c in conditions} == {f"Encounter/{encounter['id']}"}
