"""Task/$worklist under access control: a patient-scoped token sees its own patient's Tasks, patient, triggers
and team, and nothing of anyone else's; every included resource is decided on its own (real tokens, real HTTP)."""

from __future__ import annotations

import pytest
import requests

from tests.access.authkit import AuthServer, any_store_fixture  # noqa: F401 (fixture)
from tests.worklist.worklist_data import ORDER, observation, task, ward


@pytest.fixture(name="live")
def live_fixture(any_store):
    live = AuthServer(any_store)
    admin = live.client_token("system/*.cruds")
    # A Task of p1 whose input points at a measure of p2's: the p1 caller must not see that measure.
    extra = [observation("p2-secret", "p2", 222)]
    crossed = task("t-crossed", "p1", "routine", "2026-02-01T08:00:00Z", "Observation/bp0")
    crossed["input"] = [{"type": {"text": "valeur"}, "valueReference": {"reference": "Observation/p2-secret"}}]
    for resource in [*ward(), *extra, crossed]:
        response = live.request("PUT", f"{resource['resourceType']}/{resource['id']}", admin, json=resource)
        assert response.status_code in (200, 201), response.text
    live.admin = admin
    yield live
    live.close()


def _refs(bundle: dict) -> set[tuple[str, str]]:
    return {(e["resource"]["resourceType"], e["resource"].get("id") or e["fullUrl"]) for e in bundle["entry"]}


def _matches(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_a_system_client_sees_every_open_triage_task(live):
    bundle = live.request("GET", "Task/$worklist", live.admin).json()
    assert _matches(bundle) == [*ORDER, "t-crossed"]
    assert bundle["total"] == len(ORDER) + 1
    assert ("Observation", "p2-secret") in _refs(bundle)


def test_a_patient_scoped_token_sees_only_its_patients_tasks_and_team(live):
    token = live.client_token("patient/*.rs", patient="p1")
    response = live.request("GET", "Task/$worklist", token)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert _matches(bundle) == [t for t in ORDER if t not in ("t-stat-new", "t-asap")] + ["t-crossed"]
    assert "total" not in bundle  # it must not learn how many Tasks it cannot see
    refs = _refs(bundle)
    assert ("Patient", "p1") in refs and ("Patient", "p2") not in refs
    assert ("CareTeam", "team1") in refs and ("CareTeam", "team2") not in refs
    assert ("Observation", "bp0") in refs
    assert not {("Observation", oid) for oid in ("bp5", "bp6", "p2-secret")} & refs
    assert ("Practitioner", "gp1") in refs and ("Practitioner", "gp2") not in refs  # p2's doctor: not p1's team
    lists = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "List"]
    assert [x["subject"]["reference"] for x in lists] == ["Patient/p1"]


def test_included_resources_are_decided_type_by_type(live):
    # Tasks alone: no patient, no measure, no professional, no team comes along, and no List either
    # (the List would tell who the patient's team is).
    token = live.client_token("patient/Task.rs", patient="p1")
    bundle = live.request("GET", "Task/$worklist", token).json()
    assert _matches(bundle)
    assert {rtype for rtype, _ in _refs(bundle)} == {"Task"}


def test_a_token_that_may_not_read_tasks_is_refused_and_no_token_is_unauthorised(live):
    token = live.client_token("system/Observation.rs")
    refused = live.request("GET", "Task/$worklist", token)
    assert refused.status_code == 403 and refused.json()["resourceType"] == "OperationOutcome"
    assert live.request("GET", "Task/$worklist").status_code == 401


def test_a_paging_link_is_the_searchers_own(live):
    token = live.client_token("patient/*.rs", patient="p1")
    first = live.request("GET", "Task/$worklist", token, params={"_count": "2"}).json()
    assert _matches(first) == ["t-stat-old", "t-urgent"]  # full pages of its own Tasks
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    headers = {"Accept": "application/fhir+json"}
    own = requests.get(nxt, headers={**headers, "Authorization": f"Bearer {token}"}, timeout=10)
    assert own.status_code == 200
    assert all(e["resource"]["for"]["reference"] == "Patient/p1" for e in own.json()["entry"]
               if e["search"]["mode"] == "match")  # fmt: skip
    other = live.client_token("system/*.rs")
    assert requests.get(nxt, headers={**headers, "Authorization": f"Bearer {other}"}, timeout=10).status_code == 404


def test_the_worklist_is_audited_as_an_operation_on_task(live):
    token = live.client_token("system/*.rs")
    assert live.request("GET", "Task/$worklist", token).status_code == 200
    subtypes = [c.get("display") for e in live.audit_events() for c in e.get("subtype", [])]
    assert "operation:worklist" in subtypes
