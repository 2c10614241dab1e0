"""Triage end to end on the real app: a dangerous measure posted over REST becomes a Task and a Flag."""

from __future__ import annotations

import pytest
from kit.outbox import drain
from triagekit import blood_pressure, flags, inputs, measure, triage_tasks

from fhir_server.codes import TRIAGE_ALERT, TRIAGE_CLASS_SYSTEM
from rules.alerts import DISCLAIMER


@pytest.fixture
def live(server):
    assert server.put("Patient/p1", {"resourceType": "Patient", "id": "p1"}).status_code in (200, 201)
    return server


def test_a_hypertensive_crisis_raises_one_task_and_one_flag(live):
    created = live.post("Observation", blood_pressure(185, 95))
    assert created.status_code == 201
    [task] = triage_tasks(live)
    assert task["status"] == "requested" and task["intent"] == "order" and task["priority"] == "urgent"
    assert task["code"]["coding"][0]["code"] == TRIAGE_ALERT["code"]
    assert task["for"] == {"reference": "Patient/p1"}
    assert task["focus"] == {"reference": f"Observation/{created.json()['id']}"}
    assert task["reasonCode"]["coding"][0]["code"] == "hypertensive-crisis"
    assert task["reasonCode"]["coding"][0]["version"] == "1"
    assert task["businessStatus"]["coding"][0] == {"system": TRIAGE_CLASS_SYSTEM, "code": "acute",
                                                   "display": "Aigu"}
    assert task["description"].startswith("Crise hypertensive")
    assert task["note"][0]["text"] == DISCLAIMER
    assert ("PA systolique : observé", "185 mm[Hg]") in inputs(task)
    assert ("PA systolique : seuil", "≥ 180 mm[Hg]") in inputs(task)
    assert task["owner"]["reference"] == "Organization/on-call-coordination"
    [flag] = flags(live)
    assert flag["status"] == "active"
    assert flag["extension"][0]["valueReference"] == {"reference": f"Task/{task['id']}"}


def test_a_normal_measure_raises_nothing(live):
    assert live.post("Observation", blood_pressure(179, 119)).status_code == 201
    assert live.post("Observation", measure("8867-4", 80, "/min")).status_code == 201
    assert triage_tasks(live) == [] and flags(live) == []


def test_a_second_firing_updates_the_open_task_and_raises_its_priority_never_lowers_it(live):
    first = live.post("Observation", measure("2339-0", 65, "mg/dL")).json()
    [task] = triage_tasks(live)
    assert task["priority"] == "urgent"
    second = live.post("Observation", measure("2339-0", 50, "mg/dL", at="2026-11-20T09:00:00Z")).json()
    [task] = triage_tasks(live)
    assert task["priority"] == "stat" and task["focus"]["reference"] == f"Observation/{second['id']}"
    assert "niveau 2" in task["description"]
    third = live.post("Observation", measure("2339-0", 68, "mg/dL", at="2026-11-20T10:00:00Z")).json()
    [task] = triage_tasks(live)
    assert task["priority"] == "stat" and task["focus"]["reference"] == f"Observation/{third['id']}"
    triggers = [v for t, v in inputs(task) if t.startswith("Déclencheur")]
    assert triggers == [f"Observation/{o['id']}/_history/1" for o in (first, second, third)]
    assert len(flags(live)) == 1


def test_completing_the_task_ends_the_flag_and_a_new_firing_opens_a_new_task(live):
    live.post("Observation", measure("8310-5", 34.5, "Cel"))
    [task] = triage_tasks(live)
    done = {**task, "status": "completed"}
    assert live.put(f"Task/{task['id']}", done).status_code == 200
    triage_tasks(live)
    [flag] = flags(live)
    assert flag["status"] == "inactive" and "end" in flag["period"]
    live.post("Observation", measure("8310-5", 34.0, "Cel", at="2026-11-21T08:00:00Z"))
    tasks = triage_tasks(live)
    assert sorted(t["status"] for t in tasks) == ["completed", "requested"]
    assert sorted(f["status"] for f in flags(live)) == ["active", "inactive"]


QUALIFIED = {"resourceType": "Patient", "id": "known",
             "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": "279035121518989"}],
             "extension": [{"url": "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-identity-reliability",
                            "extension": [{"url": "identityStatus", "valueCoding": {
                                "system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0445",
                                "code": "QUAL"}}]}]}


@pytest.mark.parametrize("patient, status, expected", [
    (QUALIFIED, "QUAL", "chronic-known"), (QUALIFIED, "VALI", "chronic-known"),
    (QUALIFIED, "PROV", "chronic-unknown"), ({"resourceType": "Patient", "id": "known"}, None, "chronic-unknown"),
])
def test_a_chronic_alert_is_known_only_for_a_qualified_ins(server, patient, status, expected):
    if status:
        patient = {**patient, "extension": [{**patient["extension"][0], "extension": [
            {"url": "identityStatus", "valueCoding": {**patient["extension"][0]["extension"][0]["valueCoding"],
                                                      "code": status}}]}]}
    assert server.put("Patient/known", patient).ok
    server.post("Observation", measure("2339-0", 300, "mg/dL", patient="known"))
    [task] = triage_tasks(server, "known")
    assert task["businessStatus"]["coding"][0]["code"] == expected


def test_deleting_the_task_ends_its_flag(live):
    live.post("Observation", measure("8867-4", 150, "/min"))
    [task] = triage_tasks(live)
    assert live.delete(f"Task/{task['id']}").status_code in (200, 204)
    triage_tasks(live)
    [flag] = flags(live)
    assert flag["status"] == "inactive"


def test_the_task_is_on_the_worklist(live):
    created = live.post("Observation", measure("2708-6", 85, "%")).json()
    triage_tasks(live)
    bundle = live.get("Task/$worklist?patient=Patient/p1").json()
    tasks = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Task"]
    assert [t["focus"]["reference"] for t in tasks] == [f"Observation/{created['id']}"]


def test_an_open_task_keeps_its_latest_triggers_within_the_repetition_limit():
    from rules.alerts import MAX_INPUTS, MAX_TRIGGERS, TRIGGER_SYSTEM, new_task, updated_task
    from rules.engine import Finding, Firing
    from rules.loader import load_directory

    rule = next(r for r in load_directory().rules if r.id == "news2")
    findings = tuple(Finding(f"p{i}", "3", "≥ 5") for i in range(6))  # 13 inputs a firing
    firing = Firing(rule, "p1", "urgent", "m", findings)
    task = new_task(firing, "t1", "Observation/o0/_history/1", "Observation/o0", {"display": "x"}, "acute", "t")
    for n in range(1, 300):
        task = updated_task(task, firing, f"Observation/o{n}/_history/1", f"Observation/o{n}", "t")
    triggers = [i["value"] for i in task["identifier"] if i["system"] == TRIGGER_SYSTEM]
    assert len(triggers) == MAX_TRIGGERS and triggers[-1] == "news2:Observation/o299/_history/1"
    assert len(task["input"]) <= MAX_INPUTS and task["input"][0]["type"]["coding"][0]["code"] == "trigger"
    assert task["input"][-13]["valueReference"]["reference"] == "Observation/o299/_history/1"


def test_a_bundle_entry_is_triaged_as_a_rest_create(live):
    # a batch: mongomock has no transactions (a transaction Bundle is refused there); both take the write path
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:0b6c9a8e-7d0e-4b53-9b1a-6f0f5b0b9a01", "resource": measure("8310-5", 34, "Cel"),
         "request": {"method": "POST", "url": "Observation"}}]}
    assert live.post("", bundle).status_code == 200
    [task] = triage_tasks(live)
    assert task["reasonCode"]["coding"][0]["code"] == "hypothermia"


def test_a_lab_result_over_hl7_v2_is_triaged(server):
    from tests.mappers.hl7v2_samples import lab_result

    low = "OBX|1|NM|2345-7^Glucose^LN||2.8|mmol/L^mmol/L^UCUM|3.9-6.1|LL|||F|||20261120080000+0100"
    answer = server.http.post(f"{server.origin}/hl7v2", data=lab_result(obx=low).encode(),
                              headers={"Content-Type": "x-application/hl7-v2+er7"})
    assert answer.status_code == 200 and "MSA|AA" in answer.text
    drain(server.app)
    [task] = [e["resource"] for e in server.get("Task?_count=10").json()["entry"]]
    assert task["priority"] == "stat" and task["reasonCode"]["coding"][0]["code"] == "hypoglycaemia"
    assert ("Glycémie : observé", "2.8 mmol/L") in inputs(task)
