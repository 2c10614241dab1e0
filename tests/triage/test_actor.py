"""Triage writes as the internal actor relais-triage, audited as the agent; without the scopes it writes nothing
and its event waits in the outbox (nothing is lost)."""

from __future__ import annotations

from kit.live import relais_app
from kit.outbox import drain
from triagekit import measure

from auth.audit import CLIENT_ID_SYSTEM
from auth.clients import ClientRegistry
from fhir_server import write
from fhir_server.actor import SERVER


def _app(store):
    return relais_app(store, "http://relais.test/fhir", auth=True)


def _write(store, *resources):
    write.write(store, [write.Change(write.CREATE, r["resourceType"], resource=r) for r in resources], SERVER,
                dangling=True)


def test_triage_registers_itself_and_is_the_agent_of_the_audit_events_of_what_it_writes(store):
    app = _app(store)
    _write(store, {"resourceType": "Patient", "id": "p1"}, measure("2339-0", 50, "mg/dL"))
    drain(app)
    client = ClientRegistry(store).get("relais-triage")
    assert client is not None and client.internal and "system/Task.cru" in client.scopes
    [task] = store.scan("Task", None, 10)
    events = [v.resource for v in store.scan("AuditEvent", None, 100)]
    mine = [e for e in events if e["agent"][0]["who"].get("identifier") == {"system": CLIENT_ID_SYSTEM,
                                                                              "value": "relais-triage"}]
    written = {entity["what"]["reference"] for e in mine for entity in e["entity"]}
    assert f"Task/{task.id}/_history/1" in written
    assert any(ref.startswith("Flag/") for ref in written)
    assert all(e["subtype"][0]["code"] == "create" for e in mine)


def test_without_the_scope_to_write_tasks_nothing_is_written_and_the_event_is_kept(store):
    app = _app(store)
    ClientRegistry(store).add_internal("relais-triage", ["system/Observation.rs", "system/Patient.rs"])
    _write(store, {"resourceType": "Patient", "id": "p1"}, measure("2339-0", 50, "mg/dL"))
    drain(app)
    assert store.scan("Task", None, 10) == []
    assert store.outbox_pending() >= 1  # retried later, then kept with its error for an operator


def test_a_version_triage_gave_up_on_reaches_the_coordinator_as_a_task(store):
    from fhir_server.outbox import outbox_of

    app = _app(store)
    [stored] = write.write(store, [write.Change(write.CREATE, "Observation", resource=measure("2339-0", 50, "mg/dL"))],
                           SERVER, dangling=True)
    payload = {"kind": "triage", "type": "Observation", "id": stored.id, "version": 1, "rules": ["hypoglycaemia"]}
    # what the dispatcher does when a triage event fails its last attempt (relais-triage lost its Task scope)
    outbox_of(app)._dead_letter(store, payload, "PermissionError('relais-triage may not create Task')")
    [task] = [v.resource for v in store.scan("Task", None, 10)]
    assert task["reasonCode"]["coding"][0]["code"] == "triage-failure" and task["priority"] == "urgent"
    assert task["for"] == {"reference": "Patient/p1"} and "a échoué" in task["description"]
    assert task["focus"] == {"reference": f"Observation/{stored.id}"}
    assert "relais-triage may not create Task" in task["note"][1]["text"]
