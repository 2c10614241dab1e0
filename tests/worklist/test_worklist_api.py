"""GET Task/$worklist over real HTTP: ranked open triage Tasks, each with its patient, its trigger and whom to
call in order, with telecom; owner, patient, _count and paging; the CapabilityStatement says it is there."""

from __future__ import annotations

import pytest
import requests

from fhir_server import codes
from tests.worklist.worklist_data import ORDER, P1_CALLS, ward


@pytest.fixture
def ward_server(server):
    for resource in ward():
        response = server.put(f"{resource['resourceType']}/{resource['id']}", resource)
        assert response.status_code in (200, 201), response.text
    return server


def _matches(bundle: dict) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def _included(bundle: dict) -> list[tuple[str, str | None]]:
    return [(e["resource"]["resourceType"], e["resource"].get("id")) for e in bundle["entry"]
            if e["search"]["mode"] == "include"]  # fmt: skip


def _call_lists(bundle: dict) -> dict[str, dict]:
    lists = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "List"]
    return {e["resource"]["subject"]["reference"]: e for e in lists}


def test_open_triage_tasks_by_priority_then_oldest_first(ward_server):
    response = ward_server.get("Task/$worklist")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    bundle = response.json()
    assert bundle["type"] == "searchset"
    assert _matches(bundle) == ORDER  # the completed Task and the Task of another code are not there
    assert bundle["total"] == len(ORDER)
    assert bundle["link"][0]["relation"] == "self" and bundle["link"][0]["url"].endswith("/Task/$worklist")


def test_each_task_comes_with_its_patient_its_focus_and_whom_to_call_with_telecom(ward_server):
    bundle = ward_server.get("Task/$worklist").json()
    included = _included(bundle)
    urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(urls) == len(set(urls)), "each resource once"
    for rid in ("p1", "p2"):
        assert ("Patient", rid) in included
    for oid in ("bp0", "bp1", "bp2", "bp3", "bp5", "bp6"):
        assert ("Observation", oid) in included
    assert ("Observation", "bp4") not in included  # the completed Task's focus
    assert ("CareTeam", "team1") in included and ("CareTeam", "oldteam1") not in included

    lists = _call_lists(bundle)
    p1 = lists["Patient/p1"]
    assert p1["fullUrl"].startswith("urn:uuid:")
    assert p1["resource"]["orderedBy"]["coding"][0]["code"] == "priority"
    calls = [(e["item"]["reference"], e["flag"]["coding"][0]["code"]) for e in p1["resource"]["entry"]]
    assert calls == [(f"Practitioner/{rid}", role) for rid, role in P1_CALLS]
    assert p1["resource"]["entry"][0]["item"]["display"] == "Dr Marie Durand"
    assert [r for r, _ in calls[:1]] == ["Practitioner/gp1"]
    p2 = [e["item"]["reference"] for e in lists["Patient/p2"]["resource"]["entry"]]
    assert p2 == ["Practitioner/gp2", "Practitioner/nurse1"]

    # The professionals follow their List in the order to call, each with its telephone.
    people = [rid for rtype, rid in included if rtype == "Practitioner"]
    first_p1 = [rid for rid, _ in P1_CALLS]
    assert people[: len(first_p1)] == first_p1  # p1's stat Task is first: its team comes first
    assert "gone1" not in people  # ended participation, inactive team
    for e in bundle["entry"]:
        if e["resource"]["resourceType"] == "Practitioner":
            assert e["resource"]["telecom"][0]["system"] == "phone"
            assert e["fullUrl"] == f"{ward_server.base}/Practitioner/{e['resource']['id']}"


def test_owner_and_patient_narrow_the_list(ward_server):
    by_owner = ward_server.get("Task/$worklist", params={"owner": "Organization/dayteam"}).json()
    assert _matches(by_owner) == ["t-asap"]
    by_patient = ward_server.get("Task/$worklist", params={"patient": "Patient/p2"}).json()
    assert _matches(by_patient) == ["t-stat-new", "t-asap"]
    assert set(_call_lists(by_patient)) == {"Patient/p2"}
    both = ward_server.get("Task/$worklist", params={"patient": "p1", "owner": "Organization/oncall"}).json()
    assert _matches(both) == [t for t in ORDER if t not in ("t-stat-new", "t-asap")]
    none = ward_server.get("Task/$worklist", params={"patient": "nobody"}).json()
    assert none["total"] == 0 and none["entry"] == []


def test_count_pages_through_a_snapshot_and_rebuilds_each_pages_includes(ward_server):
    first = ward_server.get("Task/$worklist", params={"_count": "2"}).json()
    assert _matches(first) == ORDER[:2] and first["total"] == len(ORDER)
    seen = _matches(first)
    page = first
    while (nxt := next((link["url"] for link in page["link"] if link["relation"] == "next"), None)) is not None:
        page = requests.get(nxt, headers={"Accept": "application/fhir+json"}, timeout=10).json()
        seen += _matches(page)
        # Every page brings its own Tasks' patients and teams.
        for pid in {e["resource"]["for"]["reference"] for e in page["entry"] if e["search"]["mode"] == "match"}:
            assert pid in _call_lists(page)
            assert ("Patient", pid.split("/")[1]) in _included(page)
    assert seen == ORDER


def test_a_new_task_of_higher_priority_goes_to_the_top(ward_server):
    assert ward_server.put("Task/t-urgent", {**_task(ward_server, "t-urgent"), "priority": "stat",
                                             "authoredOn": "2026-01-01T00:00:00Z"}).status_code == 200  # fmt: skip
    assert _matches(ward_server.get("Task/$worklist").json())[0] == "t-urgent"
    assert ward_server.put("Task/t-stat-old", {**_task(ward_server, "t-stat-old"), "status": "completed"}).ok
    assert "t-stat-old" not in _matches(ward_server.get("Task/$worklist").json())


def _task(server, tid: str) -> dict:
    return server.get(f"Task/{tid}").json()


def test_bad_parameters_are_an_operation_outcome(ward_server):
    for params in ({"_count": "-1"}, {"_count": "lots"}, {"owner:missing": "maybe"}, {"patient:Observation": "x"}):
        response = ward_server.get("Task/$worklist", params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["resourceType"] == "OperationOutcome"
    lenient = ward_server.get("Task/$worklist", params={"colour": "red"}).json()
    assert lenient["entry"][-1]["search"]["mode"] == "outcome"
    strict = ward_server.get("Task/$worklist", params={"colour": "red"}, headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400


def test_count_zero_gives_the_total_alone(ward_server):
    bundle = ward_server.get("Task/$worklist", params={"_count": "0"}).json()
    assert bundle["total"] == len(ORDER) and bundle["entry"] == []


def test_the_capability_statement_declares_the_operation_on_task(ward_server):
    statement = ward_server.get("metadata").json()
    task = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Task")
    assert {"name": "worklist", "definition": "http://relais.example/OperationDefinition/Task-worklist"} in (
        task["operation"])
    assert any(o["name"] == "worklist" for o in statement["rest"][0]["operation"])
    openapi = ward_server.get("openapi.json", headers={"Accept": "application/json"}).json()
    assert set(openapi["paths"]["/Task/$worklist"]) == {"get"}  # called with GET, as the server answers it


def test_the_task_code_is_the_shared_one():
    assert codes.TRIAGE_ALERT["code"] == "triage-alert"  # the worklist finds what triage writes


def test_the_answer_is_a_valid_r4_bundle(ward_server):
    from fhir.resources.R4B.bundle import Bundle

    bundle = ward_server.get("Task/$worklist").json()
    assert len(Bundle.model_validate(bundle).entry) == len(bundle["entry"])


def test_practitioner_roles_and_organisations_in_a_team_come_with_their_people_and_telecom(ward_server):
    from tests.worklist.worklist_data import observation, practitioner, role, task

    resources = [
        practitioner("kine9", "Lambert", "+33 1 00 00 00 09", "10000000009"),
        {"resourceType": "PractitionerRole", "id": "kine9-cabinet", "practitioner": {"reference": "Practitioner/kine9"},
         "telecom": [{"system": "phone", "value": "+33 1 00 00 00 10"}]},
        {"resourceType": "Organization", "id": "pharmacie", "name": "Pharmacie du Centre",
         "telecom": [{"system": "phone", "value": "+33 1 00 00 00 11"}]},
        {"resourceType": "Patient", "id": "p3"},
        {"resourceType": "CareTeam", "id": "team3", "status": "active", "subject": {"reference": "Patient/p3"},
         "participant": [{"member": {"reference": "PractitionerRole/kine9-cabinet"}, "role": role("physiotherapist")},
                         {"member": {"reference": "Organization/pharmacie"}, "role": role("pharmacist")}]},
        observation("bp9", "p3", 190),
        task("t-p3", "p3", "urgent", "2026-01-06T08:00:00Z", "Observation/bp9"),
    ]  # fmt: skip
    for resource in resources:
        assert ward_server.put(f"{resource['resourceType']}/{resource['id']}", resource).status_code in (200, 201)
    bundle = ward_server.get("Task/$worklist", params={"patient": "p3"}).json()
    [call_list] = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "List"]
    assert [(e["item"]["reference"], e["item"].get("display")) for e in call_list["entry"]] == [
        ("Organization/pharmacie", "Pharmacie du Centre"), ("PractitionerRole/kine9-cabinet", "Dr Marie Lambert")]
    included = _included(bundle)
    for ref in (("Organization", "pharmacie"), ("PractitionerRole", "kine9-cabinet"), ("Practitioner", "kine9")):
        assert ref in included
