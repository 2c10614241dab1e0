"""Pure parts of auth: scopes, compartments, the access decision, AuditEvent shape, URL classification."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from auth import AccessDenied, Caller, can_read, decide
from auth.audit import build_audit_event, classify
from auth.scopes import narrow, parse_scope
from fhir_server.compartment import in_compartment, patient_ids


@pytest.mark.parametrize(
    "text, perms",
    [
        ("system/Observation.cruds", "cruds"),
        ("system/Observation.rs", "rs"),
        ("system/*.rs", "rs"),
        ("user/Patient.r", "r"),
        ("patient/Observation.s", "s"),
        ("system/Observation.read", "rs"),
        ("system/Observation.write", "cud"),
        ("system/Observation.*", "cruds"),
        ("patient/*.read", "rs"),
    ],
)
def test_scopes_v1_and_v2_parse(text, perms):
    assert parse_scope(text).permissions == frozenset(perms)


@pytest.mark.parametrize(
    "text",
    ["system/Observation.sr", "system/Observation.rr", "system/Observation.x", "launch", "openid",
     "system/*.rs?category=laboratory", "system/Observation.read?category=laboratory",
     "system/Observation.rs?no-such-param=1", "admin/*.cruds", "system/observation.rs", ""],
)
def test_scopes_not_understood_grant_nothing(text):
    assert parse_scope(text) is None


def test_narrow_grants_only_what_is_registered():
    registered = ["system/*.rs", "system/Observation.cruds"]
    assert narrow("system/Patient.rs system/Patient.c", registered, False) == ["system/Patient.rs"]
    assert narrow("system/Observation.read system/Observation.write", registered, False) == [
        "system/Observation.read",
        "system/Observation.write",
    ]
    assert narrow(None, registered, False) == registered
    assert narrow("user/*.rs", registered, False) == []
    # patient scopes need a patient context
    assert narrow("patient/*.rs", ["patient/*.rs"], False) == []
    assert narrow("patient/*.rs", ["patient/*.rs"], True) == ["patient/*.rs"]


def test_compartment_follows_the_compartment_definition_only():
    obs = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"},
           "performer": [{"reference": "http://x/fhir/Patient/p2/_history/3"}]}
    assert patient_ids("Observation", obs) == {"p1", "p2"}
    assert in_compartment("Patient", {"resourceType": "Patient", "id": "p1"}, "p1")
    # R4's CompartmentDefinition puts a Group in the compartments of its members (Group: member)
    group = {"resourceType": "Group", "member": [{"entity": {"reference": "Patient/p1"}}]}
    assert in_compartment("Group", group, "p1")
    assert not in_compartment("Practitioner", {"resourceType": "Practitioner", "id": "x",
                                               "text": {"div": "Patient/p1"}}, "p1")
    assert not in_compartment("Observation", {"subject": {"reference": "Group/p1"}}, "p1")


def test_decide_system_scopes():
    caller = Caller("c", ("system/Observation.rs",))
    decide(caller, "read", "Observation", {"resourceType": "Observation"})
    decide(caller, "search", "Observation")
    decide(caller, "history-type", "Observation")
    decide(caller, "capabilities", None)
    for interaction, rtype in [("read", "Patient"), ("create", "Observation"), ("delete", "Observation"),
                               ("operation:frobnicate", "Observation")]:
        with pytest.raises(AccessDenied) as info:
            decide(caller, interaction, rtype)
        assert info.value.status == 403


def test_decide_v1_write_allows_create_update_delete_not_read():
    caller = Caller("c", ("system/Observation.write",))
    for interaction in ("create", "update", "patch", "delete"):
        decide(caller, interaction, "Observation", {"resourceType": "Observation"})
    with pytest.raises(AccessDenied):
        decide(caller, "read", "Observation", {"resourceType": "Observation"})


def test_audit_events_are_append_only_whatever_the_scopes():
    for caller in (Caller("c", ("system/*.cruds",)), None):
        decide(caller, "create", "AuditEvent", {"resourceType": "AuditEvent"})
        for interaction in ("update", "patch", "delete"):
            with pytest.raises(AccessDenied):
                decide(caller, interaction, "AuditEvent", {"resourceType": "AuditEvent", "id": "a"})


def test_patient_scope_sees_only_its_compartment():
    caller = Caller("c", ("patient/*.rs",), patient="p1")
    mine = {"resourceType": "Observation", "id": "o1", "subject": {"reference": "Patient/p1"}}
    theirs = {"resourceType": "Observation", "id": "o2", "subject": {"reference": "Patient/p2"}}
    decide(caller, "read", "Observation", mine)
    decide(caller, "search", "Observation")
    with pytest.raises(AccessDenied):
        decide(caller, "read", "Observation", theirs)
    with pytest.raises(AccessDenied):  # an instance interaction without its resource cannot be checked
        decide(caller, "read", "Observation", None)
    with pytest.raises(AccessDenied):
        decide(caller, "history-system", None)
    with pytest.raises(AccessDenied):
        decide(caller, "operation:export", None)
    assert can_read(caller, mine) and not can_read(caller, theirs)
    assert can_read(caller, {"resourceType": "Practitioner", "id": "dr"})  # shared reference data
    assert not can_read(caller, {"resourceType": "Group", "id": "g"})
    decide(caller, "operation:everything", "Patient", {"resourceType": "Patient", "id": "p1"})
    with pytest.raises(AccessDenied):
        decide(caller, "operation:everything", "Patient", {"resourceType": "Patient", "id": "p2"})


def test_can_read_follows_type_scopes():
    caller = Caller("c", ("system/Observation.s",))
    assert can_read(caller, {"resourceType": "Observation"})
    assert not can_read(caller, {"resourceType": "Patient"})
    assert can_read(None, {"resourceType": "Patient"})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interaction": "read", "status": 200, "client_id": "c1", "client_label": "lab", "resource_type": "Patient",
         "resource_id": "p1", "version": "2", "patients": ["p1"]},
        {"interaction": "search", "status": 200, "client_id": "c1", "query": "GET /fhir/Observation?code=x"},
        {"interaction": "update", "status": 403, "client_id": "c1", "resource_type": "AuditEvent",
         "resource_id": "a", "message": "append-only"},
        {"interaction": "read", "status": 401, "message": "token expired", "client_address": "127.0.0.1"},
        {"interaction": "operation:everything", "status": 500, "resource_type": "Patient", "resource_id": "p1"},
        {"interaction": "token", "status": 401, "client_label": "client_id 'x' (authentication failed)"},
        {"interaction": "revoke", "status": 200, "client_id": "c1"},
    ],
)
def test_build_audit_event_is_a_valid_r4_auditevent(kwargs):
    event = build_audit_event(recorded="2026-11-23T10:00:00.000Z", server_base="http://h/fhir", **kwargs)
    AuditEvent.model_validate(event)
    assert event["outcome"] == {2: "0", 4: "4", 5: "8"}[kwargs["status"] // 100]
    assert event["agent"][0]["requestor"] is True
    assert event["source"]["site"] == "http://h/fhir"
    if kwargs["interaction"] in ("token", "revoke"):
        assert event["type"]["code"] == "110114"
    else:
        assert event["type"]["code"] == "rest"


def test_classify_requests_refused_before_decide():
    assert classify("GET", "/fhir/Patient/1", "/fhir") == ("read", "Patient", "1", None)
    assert classify("GET", "/fhir/Patient/1/_history/3", "/fhir") == ("vread", "Patient", "1", "3")
    assert classify("GET", "/fhir/Patient/1/_history", "/fhir") == ("history-instance", "Patient", "1", None)
    assert classify("GET", "/fhir/Patient", "/fhir") == ("search", "Patient", None, None)
    assert classify("POST", "/fhir/Patient/_search", "/fhir") == ("search", "Patient", None, None)
    assert classify("POST", "/fhir/Patient", "/fhir") == ("create", "Patient", None, None)
    assert classify("DELETE", "/fhir/Patient/1", "/fhir") == ("delete", "Patient", "1", None)
    assert classify("GET", "/fhir/Patient/1/$everything", "/fhir") == ("operation:everything", "Patient", "1", None)
    assert classify("GET", "/fhir/$export", "/fhir") == ("operation:export", None, None, None)
    assert classify("POST", "/fhir", "/fhir") == ("transaction", None, None, None)
    assert classify("GET", "/fhir/metadata", "/fhir") == ("capabilities", None, None, None)


def test_purge_expired_drops_only_what_has_expired(tmp_path):
    from auth.tokens import purge_expired
    from fhir_server.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'p.db'}")
    try:
        store.kv_put("oauth_jti", "old", {"exp": 1000})
        store.kv_put("oauth_jti", "new", {"exp": 5000})
        assert purge_expired(store, "oauth_jti", now=2000) == 1
        assert [k for k, _ in store.kv_list("oauth_jti")] == ["new"]
    finally:
        store.close()


def test_caller_for_client_outside_a_request(tmp_path):
    from auth import caller_for_client
    from auth.clients import ClientRegistry
    from fhir_server.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        client, _ = ClientRegistry(store).add("sub", ["patient/Observation.rs"], secret=True, patient="p1")
        caller = caller_for_client(store, client.client_id)
        mine = {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}
        assert can_read(caller, mine)
        assert not can_read(caller, {**mine, "subject": {"reference": "Patient/p2"}})
        ClientRegistry(store).set_enabled(client.client_id, False)
        assert not can_read(caller_for_client(store, client.client_id), mine)
        assert not can_read(caller_for_client(store, "unknown"), mine)
    finally:
        store.close()


LAB = "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"


def _obs(category: str, patient: str = "p1") -> dict:
    system, code = "http://terminology.hl7.org/CodeSystem/observation-category", category
    return {"resourceType": "Observation", "id": category, "status": "final", "code": {"text": "x"},
            "category": [{"coding": [{"system": system, "code": code}]}],
            "subject": {"reference": f"Patient/{patient}"}}


def test_granular_v2_scopes_reach_only_what_their_query_matches():
    caller = Caller("c", (f"patient/Observation.rs?category={LAB}",), patient="p1")
    assert can_read(caller, _obs("laboratory"))
    assert not can_read(caller, _obs("vital-signs"))
    assert not can_read(caller, _obs("laboratory", patient="p2"))  # and still only the patient's compartment
    decide(caller, "search", "Observation")
    decide(caller, "read", "Observation", _obs("laboratory"))
    with pytest.raises(AccessDenied):
        decide(caller, "read", "Observation", _obs("vital-signs"))
    writer = Caller("w", (f"system/Observation.c?category={LAB}",))
    decide(writer, "create", "Observation", _obs("laboratory"))
    with pytest.raises(AccessDenied):
        decide(writer, "create", "Observation", _obs("vital-signs"))
    # a registration without a query covers a granular request, not the other way round
    assert narrow(f"system/Observation.rs?category={LAB}", ["system/Observation.rs"], False)
    assert narrow("system/Observation.rs", [f"system/Observation.rs?category={LAB}"], False) == []


def test_sees_all_tells_when_a_search_total_would_leak():
    from auth import sees_all

    assert sees_all(None, "Observation")
    assert sees_all(Caller("c", ("system/*.rs",)), "Observation")
    assert not sees_all(Caller("c", ("system/Patient.rs",)), "Observation")
    assert not sees_all(Caller("c", ("patient/*.rs",), patient="p1"), "Observation")
    assert not sees_all(Caller("c", (f"system/Observation.rs?category={LAB}",)), "Observation")


def test_stored_audit_events_leave_nothing_in_the_outbox(tmp_path):
    """The outbox event of an AuditEvent would have no reader: the audit handler writes none."""
    from auth.audit import outbox_payload, store_audit_events
    from fhir_server.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'audit.db'}")
    facts = [dict(interaction="read", status=200, recorded="2026-11-24T02:00:00.000Z",
                  server_base="http://relais.test/fhir", resource_type="Observation", resource_id=f"o{i}",
                  event_id=f"00000000-0000-7000-8000-00000000000{i}") for i in range(3)]
    store_audit_events(store, [outbox_payload(f) for f in facts])
    assert len(store.read_many("AuditEvent", [f["event_id"] for f in facts])) == 3
    assert store.outbox_pending() == 0
    store.close()
