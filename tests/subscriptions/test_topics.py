"""Topic-based Subscriptions (Subscriptions R5 Backport, R4) end to end: the real app on loopback, a real
receiver, the outbox drained and the courier run from the test (scheduler off)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kit.live import serve
from kit.stores import make_store

from fhir_server.subscriptions.backport import CAPABILITY_TOPIC, EVENTS_OPERATION, STATUS_OPERATION
from fhir_server.subscriptions.topics import TOPICS
from tests.subscriptions.hookkit import Receiver
from tests.subscriptions.topickit import (
    DOCUMENT,
    MEASURE,
    PATIENT,
    TRIAGE,
    deliver,
    document,
    events_of,
    notices,
    topic_subscription,
    triage_task,
    vital_sign,
)


@pytest.fixture(params=["sqlite", "mongomock"])
def live(request: pytest.FixtureRequest, tmp_path):
    store = make_store(request.param, tmp_path, durable=False)
    server = serve(store)
    for pid in ("p1", "p2"):
        assert server.put(f"Patient/{pid}", {"resourceType": "Patient", "id": pid}).status_code in (200, 201)
    for pid in ("oncall", "other"):
        server.put(f"CareTeam/{pid}", {"resourceType": "CareTeam", "id": pid, "status": "active"})
    deliver(server.app)  # the set-up's writes are matched before anything subscribes
    yield server
    server.close()
    store.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _subscribe(live, body: dict) -> dict:
    response = live.post("Subscription", body)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "active"
    return response.json()


def test_the_capability_statement_advertises_the_topics_and_operations(live):
    statement = live.get("metadata").json()
    subscription = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Subscription")
    advertised = [e["valueCanonical"] for e in subscription["extension"] if e["url"] == CAPABILITY_TOPIC]
    assert sorted(advertised) == sorted(TOPICS) and len(advertised) >= 4
    assert {(o["name"], o["definition"]) for o in subscription["operation"]} >= {
        ("status", STATUS_OPERATION), ("events", EVENTS_OPERATION)}


def test_a_vital_sign_for_the_filtered_patient_is_notified_with_gapless_numbers(live, receiver):
    sub = _subscribe(live, topic_subscription(receiver.url, MEASURE, "Observation?patient=Patient/p1"))
    deliver(live.app)
    assert [n.type for n in notices(receiver)] == ["handshake"]
    ids = [live.post("Observation", vital_sign("p1", value=v)).json()["id"] for v in (70, 71)]
    live.post("Observation", vital_sign("p2"))  # another patient
    plain = vital_sign("p1")
    plain.pop("category")
    live.post("Observation", plain)  # not a vital sign
    ids.append(live.post("Observation", vital_sign("p1", value=72)).json()["id"])
    deliver(live.app)
    got = events_of(receiver)
    numbers = [n for notice in got for n in notice.numbers]
    assert numbers == [1, 2, 3]
    assert [f.rsplit("/", 1)[1] for notice in got for f in notice.focus] == ids
    assert got[-1].since_start == 3 and got[-1].subscription.endswith(f"Subscription/{sub['id']}")
    # id-only: an entry per focus, without the resource
    assert all("resource" not in e for notice in got for e in notice.entries)


def test_a_filter_by_code_and_payload_contents(live, receiver):
    full = _subscribe(live, topic_subscription(receiver.url, MEASURE, "code=http://loinc.org|8867-4",
                                               content="full-resource"))
    empty = _subscribe(live, topic_subscription(receiver.url, MEASURE, content="empty"))
    live.post("Observation", vital_sign("p1", code="8867-4"))
    live.post("Observation", vital_sign("p2", code="8480-6"))
    deliver(live.app)
    by_sub: dict[str, list] = {}
    for n in events_of(receiver):
        by_sub.setdefault(n.subscription.rsplit("/", 1)[1], []).append(n)
    full_entries = [e for n in by_sub[full["id"]] for e in n.entries]
    assert [e["resource"]["code"]["coding"][0]["code"] for e in full_entries] == ["8867-4"]
    assert [e["request"]["method"] for e in full_entries] == ["POST"]
    empty_notices = by_sub[empty["id"]]
    assert [n for notice in empty_notices for n in notice.numbers] == [1, 2]
    assert all(f is None for notice in empty_notices for f in notice.focus)
    assert all(not notice.entries for notice in empty_notices)


def test_triage_alerts_filtered_by_priority_and_owner_and_their_deletion(live, receiver):
    _subscribe(live, topic_subscription(receiver.url, TRIAGE, "Task?priority=urgent&owner=CareTeam/oncall"))
    wanted = live.post("Task", triage_task(priority="urgent", owner="CareTeam/oncall")).json()
    live.post("Task", triage_task(priority="routine", owner="CareTeam/oncall"))
    live.post("Task", triage_task(priority="urgent", owner="CareTeam/other"))
    live.post("Task", {**triage_task(owner="CareTeam/oncall"), "code": {"text": "not an alert"}})
    wanted["status"] = "in-progress"
    assert live.put(f"Task/{wanted['id']}", wanted).status_code == 200
    assert live.delete(f"Task/{wanted['id']}").status_code in (200, 204)
    deliver(live.app)
    got = events_of(receiver)
    assert [n for notice in got for n in notice.numbers] == [1, 2, 3]
    methods = [e["request"]["method"] for notice in got for e in notice.entries]
    assert methods == ["POST", "PUT", "DELETE"]
    assert {f.rsplit("/", 1)[1] for notice in got for f in notice.focus} == {wanted["id"]}


def test_documents_and_patients(live, receiver):
    docs = _subscribe(live, topic_subscription(receiver.url, DOCUMENT, "DocumentReference?patient=Patient/p2"))
    patients = _subscribe(live, topic_subscription(receiver.url, PATIENT))
    live.post("DocumentReference", document("p1"))
    mine = live.post("DocumentReference", document("p2")).json()
    replacing = {**document("p2"), "relatesTo": [{"code": "replaces", "target": {"reference":
                                                                               f"DocumentReference/{mine['id']}"}}]}
    live.post("DocumentReference", replacing)
    created = live.post("Patient", {"resourceType": "Patient", "name": [{"family": "Martin"}]}).json()
    merged = {**created, "active": False, "link": [{"other": {"reference": "Patient/p1"}, "type": "replaced-by"}]}
    live.put(f"Patient/{created['id']}", merged)
    deliver(live.app)
    by_sub: dict[str, list] = {}
    for n in events_of(receiver):
        by_sub.setdefault(n.subscription.rsplit("/", 1)[1], []).append(n)
    assert [n for notice in by_sub[docs["id"]] for n in notice.numbers] == [1, 2]
    patient_focus = [f.rsplit("/", 1)[1] for notice in by_sub[patients["id"]] for f in notice.focus]
    assert patient_focus == [created["id"], created["id"]]


def test_status_and_events_let_a_receiver_fetch_what_it_missed(live, receiver):
    sub = _subscribe(live, topic_subscription(receiver.url, MEASURE, content="full-resource"))
    ids = [live.post("Observation", vital_sign("p1", value=60 + i)).json()["id"] for i in range(5)]
    deliver(live.app)
    status = live.get(f"Subscription/{sub['id']}/$status").json()
    parameters = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}
    assert parameters["type"]["valueCode"] == "query-status"
    assert parameters["events-since-subscription-start"]["valueString"] == "5"
    assert parameters["status"]["valueCode"] == "active"
    events = live.get(f"Subscription/{sub['id']}/$events",
                      params={"eventsSinceNumber": "2", "eventsUntilNumber": "4"}).json()
    assert events["type"] == "history"
    parts = [p for p in events["entry"][0]["resource"]["parameter"] if p["name"] == "notification-event"]
    assert [p["part"][0]["valueString"] for p in parts] == ["2", "3", "4"]
    assert [e["resource"]["id"] for e in events["entry"][1:]] == ids[1:4]
    posted = live.post(f"Subscription/{sub['id']}/$events", {"resourceType": "Parameters", "parameter": [
        {"name": "eventsSinceNumber", "valueString": "5"}, {"name": "content", "valueCode": "id-only"}]}).json()
    assert [e["fullUrl"].rsplit("/", 1)[1] for e in posted["entry"][1:]] == ids[4:]
    assert "resource" not in posted["entry"][1]
    assert live.get(f"Subscription/{sub['id']}/$events", params={"eventsSinceNumber": "x"}).status_code == 400
    classic = live.post("Subscription", {"resourceType": "Subscription", "status": "requested", "reason": "r",
                                         "criteria": "Observation?code=http://loinc.org|8867-4",
                                         "channel": {"type": "rest-hook", "endpoint": receiver.url}}).json()
    assert live.get(f"Subscription/{classic['id']}/$status").status_code == 400
    assert live.get("Subscription/nope/$status").status_code == 404


_NOWHERE = "http://127.0.0.1:9/h"


@pytest.mark.parametrize("body, where", [
    (topic_subscription(_NOWHERE, "https://relais.example/fhir/SubscriptionTopic/nothing"), "Subscription.criteria"),
    (topic_subscription(_NOWHERE, MEASURE, "Observation?status=final"), "Subscription.criteria.extension"),
    (topic_subscription(_NOWHERE, MEASURE, "Task?patient=Patient/p1"), "Subscription.criteria.extension"),
    (topic_subscription(_NOWHERE, MEASURE, content="everything"), "Subscription.channel.payload"),
    (topic_subscription(_NOWHERE, MEASURE, heartbeat=0), "Subscription.channel.extension"),
])
def test_what_a_topic_subscription_cannot_ask_is_refused_with_422(live, body, where):
    response = live.post("Subscription", body)
    assert response.status_code == 422, response.text
    assert response.json()["issue"][0]["expression"] == [where]


def test_criteria_based_subscriptions_are_unchanged_beside_topics(live, receiver):
    """An R4 criteria Subscription and a topic one on the same write: each gets its own kind of notification."""
    live.post("Subscription", {"resourceType": "Subscription", "status": "requested", "reason": "r",
                               "criteria": "Observation?code=http://loinc.org|8867-4",
                               "channel": {"type": "rest-hook", "endpoint": receiver.url,
                                           "payload": "application/fhir+json"}})
    _subscribe(live, topic_subscription(receiver.url, MEASURE))
    created = live.post("Observation", vital_sign("p1")).json()
    deliver(live.app)
    paths = sorted(r.path for r in receiver.snapshot())
    assert paths == ["/hook", "/hook", f"/hook/Observation/{created['id']}"]  # handshake, event, R4 PUT
