"""Acceptance, indexing, matching and the rest-hook request as pure functions: data in, data out."""

from __future__ import annotations

import json

import pytest

from auth import Caller, can_read
from fhir_server.errors import FHIRError
from fhir_server.subscriptions import index, notify, resthook, status
from fhir_server.subscriptions.acceptance import OWNER_URL, accept, criteria_query, delivers, owner_of, parse_header
from tests.subscriptions.hookkit import subscription

URL = "http://127.0.0.1:9/hook"
BP = "Observation?code=http://loinc.org|85354-9"


def _obs(id: str, patient: str, code: str = "85354-9") -> dict:
    return {"resourceType": "Observation", "id": id, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}}


def _refused(body: dict) -> FHIRError:
    with pytest.raises(FHIRError) as caught:
        accept(body, "a")
    return caught.value


def test_accept_activates_a_requested_subscription_and_sets_its_owner():
    claimed = {"url": OWNER_URL, "valueIdentifier": {"value": "mallory"}}
    other = {"url": "http://example.org/keep-me", "valueString": "x"}
    stored = accept(subscription(URL, BP, extension=[claimed, other]), "client-a")
    assert stored["status"] == "active" and owner_of(stored) == "client-a"
    assert other in stored["extension"] and claimed not in stored["extension"]
    # authentication off: no owner at all, whatever the body claims
    assert owner_of(accept(subscription(URL, BP, extension=[claimed]), None)) is None
    assert accept({**subscription(URL, BP), "status": "off"}, "a")["status"] == "off"


@pytest.mark.parametrize("body, path, words", [
    (subscription(URL, BP, channel={"type": "email"}), "Subscription.channel.type", "not supported"),
    (subscription(URL, BP, channel={"type": "message"}), "Subscription.channel.type", "rest-hook"),
    (subscription("mailto:x@example.org", BP), "Subscription.channel.endpoint", "http"),
    (subscription(URL, BP, payload="application/fhir+xml"), "Subscription.channel.payload", "fhir+json"),
    (subscription(URL, BP, channel={"header": ["no colon here"]}), "Subscription.channel.header[0]", "Name: value"),
    (subscription(URL, "Observation?code:nonsense=1"), "Subscription.criteria", "nonsense"),
    (subscription(URL, "Observation?unknown=1"), "Subscription.criteria", "unknown"),
    (subscription(URL, "observation?code=1"), "Subscription.criteria", "not supported"),
    (subscription(URL, "?code=1"), "Subscription.criteria", "not supported"),
    (subscription(URL, "AuditEvent"), "Subscription.criteria", "AuditEvent"),
])
def test_accept_refuses_what_it_cannot_honour_with_422_naming_it(body, path, words):
    error = _refused(body)
    assert error.status == 422 and error.expression == [path]
    assert words in error.diagnostics


def test_accept_keeps_endpoints_under_the_allowed_prefixes():
    allowed = ("https://partner.example/hooks/", "http://127.0.0.1:9/")
    assert accept(subscription(URL, BP), "a", allowed)["status"] == "active"
    assert accept(subscription("https://partner.example/hooks/bp", BP), "a", allowed)["status"] == "active"
    for endpoint in ("http://169.254.169.254/latest/meta-data", "https://partner.example/other",
                     "https://partner.example.evil.org/hooks/"):
        with pytest.raises(FHIRError) as caught:
            accept(subscription(endpoint, BP), "a", allowed)
        assert caught.value.status == 422 and caught.value.expression == ["Subscription.channel.endpoint"]
        assert "RELAIS_RESTHOOK_ALLOW" in caught.value.diagnostics


def test_criteria_query_and_headers():
    query = criteria_query(BP + "&date=ge2026-01-01")
    assert query.resource_type == "Observation" and len(query.clauses) == 2
    assert criteria_query("Observation").clauses == ()  # every Observation
    assert parse_header("Authorization: Bearer abc") == ("Authorization", "Bearer abc")
    with pytest.raises(ValueError):
        parse_header("X-A: b\r\nX-B: c")


def test_delivers_only_when_active_and_before_end():
    active = accept(subscription(URL, BP), "a")
    assert delivers(active, 1e9)
    assert not delivers({**active, "end": "2020-01-01T00:00:00Z"}, 1.8e9)
    assert delivers({**active, "end": "2099-01-01T00:00:00Z"}, 1.8e9)
    assert not delivers({**active, "status": "off"}, 1e9) and not delivers({**active, "status": "error"}, 1e9)


def _stored(id: str, body: dict, owner: str | None = "a") -> tuple[dict, int]:
    return {**accept(body, owner), "id": id}, 1


def test_index_keeps_active_subscriptions_by_type():
    built = index.build([
        _stored("s1", subscription(URL, BP)),
        _stored("s2", {**subscription(URL, BP), "status": "off"}),
        _stored("s3", subscription(URL, "Condition?code=x")),
        ({**accept(subscription(URL, BP), "a"), "id": "s4", "criteria": "Observation?gone-param=1"}, 2),
        _stored("s5", {**subscription(URL, BP), "end": "2020-01-01T00:00:00Z"}),
    ])
    assert sorted(built) == ["Condition", "Observation"]
    assert [s.id for s in built["Observation"]] == ["s1", "s5"]  # s4's criteria no longer parse: skipped
    assert [s.id for s in index.candidates(built, "Observation", 1.8e9)] == ["s1"]  # s5 has ended
    assert index.candidates(built, "Patient", 0) == ()


def test_matching_uses_the_search_semantics():
    built = index.build([_stored("bp", subscription(URL, BP)),
                         _stored("p1", subscription(URL, "Observation?subject=Patient/p1")),
                         _stored("all", subscription(URL, "Observation"))])
    subs = built["Observation"]
    assert [s.id for s in notify.matching(subs, _obs("o1", "p1"))] == ["bp", "p1", "all"]
    assert [s.id for s in notify.matching(subs, _obs("o2", "p2", code="29463-7"))] == ["all"]


def test_may_receive_follows_the_owners_scopes():
    clients = {
        "system": Caller("system", ("system/Observation.rs",)),
        "patient-x": Caller("patient-x", ("patient/Observation.rs",), patient="X"),
        "granular": Caller("granular", ("system/Observation.rs?subject=Patient/X",)),
        "nothing": Caller("nothing", ("system/Patient.rs",)),
    }

    def reader(owner: str, resource: dict) -> bool:
        return can_read(clients[owner], resource)

    x, y = _obs("ox", "X"), _obs("oy", "Y")
    seen = {owner: [r["id"] for r in (x, y) if notify.may_receive(True, owner, r, reader)] for owner in clients}
    assert seen == {"system": ["ox", "oy"], "patient-x": ["ox"], "granular": ["ox"], "nothing": []}
    assert not notify.may_receive(True, None, x, reader)  # no owner with authentication on: nothing
    assert notify.may_receive(False, None, x, reader)  # authentication off: everything


def test_rest_hook_requests_as_r4_prescribes():
    resource = _obs("o1", "p1")
    headers = ["Authorization: Bearer t", "content-length: 0", "Host: elsewhere"]
    with_payload = accept(subscription(URL + "/", BP, channel={"header": headers}), "a")
    put = resthook.notification(with_payload, resource)
    assert (put.method, put.url) == ("PUT", "http://127.0.0.1:9/hook/Observation/o1")
    assert put.headers["Authorization"] == "Bearer t"
    assert not {"content-length", "host"} & {name.lower() for name in put.headers}  # framing is the server's
    assert put.headers["Content-Type"].startswith("application/fhir+json")
    assert json.loads(put.body) == resource
    post = resthook.notification(accept(subscription(URL, BP, payload=None), "a"), resource)
    assert (post.method, post.url, post.body) == ("POST", URL, None)


def test_a_notification_sends_decimals_as_they_were_written():
    from fhir_server.fhirjson import parse_body

    resource = {**_obs("o1", "p1"), "valueQuantity": parse_body('{"value": 72.400, "unit": "kg"}')}
    put = resthook.notification(accept(subscription(URL, BP), "a"), resource)
    assert b'"valueQuantity":{"value":72.400,"unit":"kg"}' in put.body


def test_giving_up_puts_an_active_subscription_in_error():
    active = accept(subscription(URL, BP), "a")
    errored = status.with_status(active, "error", "delivery failed")
    assert errored["status"] == "error" and errored["error"] == "delivery failed" and owner_of(errored) == "a"
    assert status.with_status({**active, "status": "off"}, "error", "x") is None
