"""A client may send AuditEvents (IHE BALP) but cannot pass one off as the server's; regulators tell them apart."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from authkit import AuthServer, any_store_fixture, live_fixture, observation, patients, sqlite_store_fixture  # noqa: F401
from kit.live import relais_app
from kit.outbox import drain
from kit.ports import free_port

from fhir_server.audit_origin import CLIENT_ID_SYSTEM, ORIGIN_SYSTEM

SERVER_MARK = f"{ORIGIN_SYSTEM}|server"
CLIENT_MARK = f"{ORIGIN_SYSTEM}|client"
SERVER_OBSERVER = {"display": "Relais FHIR server"}


def forged(**extra) -> dict:
    """An AuditEvent that claims to be the server's: its observer, its site, a time of its choosing."""
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "recorded": "2020-01-01T00:00:00Z",
        "agent": [{"who": {"display": "someone else"}, "requestor": True}],
        "source": {"site": "http://relais.example/fhir", "observer": dict(SERVER_OBSERVER)},
        **extra,
    }


def _origin(event: dict) -> set[str]:
    return {t["code"] for t in (event.get("meta") or {}).get("tag") or () if t.get("system") == ORIGIN_SYSTEM}


@pytest.fixture(name="live_any")
def live_any_fixture(any_store) -> Iterator[AuthServer]:
    server = AuthServer(any_store)
    yield server
    server.close()


def test_a_client_audit_event_is_observed_by_the_client_whatever_its_body_says(live):
    client_id, key = live.add_client("system/AuditEvent.cr")
    token = live.token(client_id, key)
    created = live.request("POST", "AuditEvent", token, json=forged())
    assert created.status_code == 201, created.text
    for event in (created.json(), live.request("GET", f"AuditEvent/{created.json()['id']}", token).json()):
        assert event["source"]["observer"]["identifier"] == {"system": CLIENT_ID_SYSTEM, "value": client_id}
        assert event["source"]["observer"] != SERVER_OBSERVER
        assert event["source"]["site"] == "http://relais.example/fhir"  # the rest of the body is the client's
        assert event["recorded"] == "2020-01-01T00:00:00Z"
        assert _origin(event) == {"client"}


@pytest.mark.parametrize("code", ["server", "anything-but-client"])
def test_a_client_cannot_set_the_servers_mark(live, code):
    token = live.client_token("system/AuditEvent.cruds")
    mark = {"tag": [{"system": ORIGIN_SYSTEM, "code": code}]}
    refused = live.request("POST", "AuditEvent", token, json=forged(meta=mark))
    assert refused.status_code == 403, refused.text
    assert refused.json()["issue"][0]["expression"] == ["AuditEvent.meta.tag"]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": observation("p1"), "request": {"method": "POST", "url": "Observation"}},
        {"resource": forged(meta=mark), "request": {"method": "POST", "url": "AuditEvent"}},
    ]}
    admin = live.client_token("system/*.cruds")
    assert live.request("POST", "", admin, json=bundle).status_code == 403
    assert live.request("GET", "Observation", admin).json()["total"] == 0
    assert live.request("GET", "AuditEvent", admin).json()["total"] == 0  # the server's own are still queued
    # what the client may say: it is a client, which the server would say anyway
    kept = live.request("POST", "AuditEvent", token, json=forged(meta={"tag": [
        {"system": ORIGIN_SYSTEM, "code": "client"}, {"system": "http://example.org/tags", "code": "mine"}]}))
    assert kept.status_code == 201, kept.text
    assert kept.json()["meta"]["tag"] == [{"system": "http://example.org/tags", "code": "mine"},
                                          {"system": ORIGIN_SYSTEM, "code": "client", "display": "sent by a client"}]


def test_bundle_entries_are_stamped_too(live):
    client_id, key = live.add_client("system/*.cruds")
    token = live.token(client_id, key)
    for kind in ("transaction", "batch"):
        bundle = {"resourceType": "Bundle", "type": kind, "entry": [
            {"resource": forged(), "request": {"method": "POST", "url": "AuditEvent"}}]}
        answer = live.request("POST", "", token, json=bundle)
        assert answer.status_code == 200, answer.text
        location = answer.json()["entry"][0]["response"]["location"]
        event = live.request("GET", location.split("/_history")[0], token).json()
        assert event["source"]["observer"]["identifier"]["value"] == client_id
        assert _origin(event) == {"client"}


def test_regulators_search_the_servers_events_and_the_clients_apart(live_any):
    live = live_any
    sender_id, key = live.add_client("system/AuditEvent.c system/Observation.cr")
    sender = live.token(sender_id, key)
    patients(live.store, "p1")
    assert live.request("POST", "Observation", sender, json=observation("p1")).status_code == 201
    sent = live.request("POST", "AuditEvent", sender, json=forged())
    assert sent.status_code == 201, sent.text
    drain(live.app)
    regulator = live.client_token("system/AuditEvent.rs")

    def ids(query: str) -> list[dict]:
        answer = live.request("GET", f"AuditEvent?{query}&_count=200", regulator)
        assert answer.status_code == 200, answer.text
        return [e["resource"] for e in answer.json().get("entry", [])]

    servers = ids(f"_tag={SERVER_MARK}")
    assert servers and all(_origin(e) == {"server"} and e["source"]["observer"] == SERVER_OBSERVER for e in servers)
    assert sent.json()["id"] not in {e["id"] for e in servers}
    clients = ids(f"_tag={CLIENT_MARK}")
    assert [e["id"] for e in clients] == [sent.json()["id"]]
    assert [e["id"] for e in ids(f"_tag:not={SERVER_MARK}")] == [sent.json()["id"]]
    by_sender = ids(f"_tag={CLIENT_MARK}&source:identifier={CLIENT_ID_SYSTEM}|{sender_id}")
    assert [e["id"] for e in by_sender] == [sent.json()["id"]]
    assert len(ids("_tag:not=" + CLIENT_MARK)) == len(servers)


def test_with_authentication_off_a_sent_audit_event_is_still_tagged_a_clients(sqlite_store):
    from kit.live import LiveServer

    port = free_port()
    server = LiveServer(relais_app(sqlite_store, f"http://127.0.0.1:{port}/fhir"), port)
    try:
        created = server.post("AuditEvent", forged())
        assert created.status_code == 201, created.text
        # no authenticated client to name: the body's observer stays, the tag says who sent it
        assert created.json()["source"]["observer"] == SERVER_OBSERVER
        assert _origin(created.json()) == {"client"}
        assert server.post("AuditEvent", forged(meta={"tag": [{"system": ORIGIN_SYSTEM, "code": "server"}]})
                           ).status_code == 403
    finally:
        server.close()
