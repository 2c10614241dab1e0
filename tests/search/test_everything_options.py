"""Patient/$everything: AuditEvents left out unless asked for, and start/end on the care dates."""

from __future__ import annotations

from kit.outbox import drain

from fhir_server.search.registry import get_registry
from fhir_server.searching.everything import CLINICAL_DATE, clinical_date
from tests.access.authkit import AuthServer, observation, sqlite_store_fixture  # noqa: F401 (fixture)


def listed(bundle: dict) -> set[tuple[str, str]]:
    return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}


def test_everything_leaves_out_the_audit_of_its_own_calls(sqlite_store):
    live = AuthServer(sqlite_store)
    try:
        admin = live.client_token("system/*.cruds")
        live.request("PUT", "Patient/p1", admin, json={"resourceType": "Patient", "id": "p1"})
        live.request("POST", "Observation", admin, json=observation("p1"))
        sizes = []
        for _ in range(3):
            bundle = live.request("GET", "Patient/p1/$everything", admin).json()
            sizes.append(len(bundle["entry"]))
            drain(live.app)  # the audit of the call is stored by the outbox, as the scheduler would
        assert sizes == [2, 2, 2]
        audits = live.request("GET", "AuditEvent", admin, params={"patient": "Patient/p1"}).json()
        assert audits.get("entry"), "the calls were audited"
        asked = live.request("GET", "Patient/p1/$everything", admin, params={"_type": "AuditEvent"}).json()
        assert {t for t, _ in listed(asked)} >= {"AuditEvent"}
    finally:
        live.close()


def test_start_and_end_keep_the_care_within_the_period(server):
    server.put("Patient/p1", {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01"})
    made = {}
    for key, body in {
        "jan": observation("p1", effectiveDateTime="2026-01-15"),
        "mar": observation("p1", effectiveDateTime="2026-03-15T10:00:00Z"),
        "undated": observation("p1"),
        "span": {"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"},
                 "subject": {"reference": "Patient/p1"}, "period": {"start": "2025-12-20", "end": "2026-02-02"}},
        "med": {"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": {
            "reference": "Patient/p1"}, "medicationCodeableConcept": {"text": "x"}, "authoredOn": "2026-03-01"},
        "coverage": {"resourceType": "Coverage", "status": "active", "beneficiary": {"reference": "Patient/p1"},
                     "payor": [{"reference": "Patient/p1"}]},
    }.items():
        response = server.post(body["resourceType"], body)
        assert response.status_code == 201, response.text
        made[key] = (body["resourceType"], response.json()["id"])

    def everything(**params) -> set[tuple[str, str]]:
        response = server.get("Patient/p1/$everything", params=params)
        assert response.status_code == 200, response.text
        return listed(response.json())

    every = everything()
    assert set(made.values()) | {("Patient", "p1")} == every
    january = everything(start="2026-01-01", end="2026-01-31")
    assert january == {("Patient", "p1"), made["jan"], made["span"], made["coverage"]}
    since_feb = everything(start="2026-02")
    assert since_feb == {("Patient", "p1"), made["mar"], made["span"], made["med"], made["coverage"]}
    until = everything(end="2025-12-31")
    assert until == {("Patient", "p1"), made["span"], made["coverage"]}
    assert server.get("Patient/p1/$everything", params={"start": "last week"}).status_code == 400


def test_every_clinical_date_is_a_date_parameter_of_its_type():
    registry = get_registry()
    for rtype, name in CLINICAL_DATE.items():
        assert registry.get(rtype, name).type == "date", (rtype, name)
    assert clinical_date("Observation") == "date" and clinical_date("Patient") is None
    assert clinical_date("Coverage") is None and clinical_date("MedicationRequest") == "authoredon"
