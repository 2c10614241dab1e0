"""Pure parts of topic-based Subscriptions: topics and their filters, the backport extensions, event
numbers in a store (gapless under concurrency, once per version), notification Bundles, header masking,
lanes and backoff."""

from __future__ import annotations

import threading

import pytest
from kit.stores import BACKENDS, make_store

from fhir_server.search.matcher import matches
from fhir_server.subscriptions import backport, lanes, ledger, masking
from fhir_server.subscriptions import bundle as notifications
from fhir_server.subscriptions.acceptance import OWNER_URL
from fhir_server.subscriptions.topics import TOPICS, filter_pairs, interaction_of, topic_of, topic_query
from tests.subscriptions.topickit import DOCUMENT, MEASURE, PATIENT, TRIAGE, topic_subscription, triage_task, vital_sign


def test_four_topics_each_on_its_type():
    assert {t.resource_type for t in TOPICS.values()} == {"Task", "Observation", "DocumentReference", "Patient"}
    assert topic_of(TRIAGE).filters[:2] == ("priority", "owner")
    assert {"patient", "code"} <= set(topic_of(MEASURE).filters)
    assert "patient" in topic_of(DOCUMENT).filters
    assert topic_of("Observation?code=x") is None


def test_filters_take_both_spellings_and_refuse_what_the_topic_does_not_filter_by():
    topic = topic_of(TRIAGE)
    assert filter_pairs(topic, ["Task?priority=urgent&owner=CareTeam/a", "status=requested"]) == [
        ("priority", "urgent"), ("owner", "CareTeam/a"), ("status", "requested")]
    with pytest.raises(ValueError, match="filtered by"):
        filter_pairs(topic, ["Task?code=x"])
    with pytest.raises(ValueError, match="notifies Task"):
        filter_pairs(topic, ["Observation?priority=urgent"])


def test_a_topic_query_is_the_topic_and_every_filter():
    query = topic_query(topic_of(TRIAGE), ["priority=urgent", "owner=CareTeam/oncall"])
    assert matches(query, {**triage_task(owner="CareTeam/oncall"), "id": "t"})
    assert not matches(query, {**triage_task(owner="CareTeam/other"), "id": "t"})
    assert not matches(query, {**triage_task(priority="routine", owner="CareTeam/oncall"), "id": "t"})
    not_alert = {**triage_task(owner="CareTeam/oncall"), "id": "t", "code": {"text": "x"}}
    assert not matches(query, not_alert)
    measure = topic_query(topic_of(MEASURE), ["Observation?patient=Patient/p1&code=http://loinc.org|8867-4"])
    assert matches(measure, {**vital_sign("p1"), "id": "o"})
    assert not matches(measure, {**vital_sign("p2"), "id": "o"})
    assert not matches(measure, {**vital_sign("p1", code="8480-6"), "id": "o"})


def test_interactions_a_put_creating_is_a_create():
    assert interaction_of("PUT", 1) == "create" and interaction_of("PUT", 2) == "update"
    assert interaction_of("PATCH", 3) == "update" and interaction_of("DELETE", 4) == "delete"
    assert "delete" not in topic_of(MEASURE).interactions and "delete" in topic_of(DOCUMENT).interactions
    assert topic_of(PATIENT).interactions >= {"create", "update"}


def test_backport_settings_are_read_with_their_defaults():
    settings = backport.read(topic_subscription("http://x/h", MEASURE, content=None))
    assert (settings.content, settings.heartbeat_s, settings.timeout_s, settings.max_count) == (
        "id-only", None, None, backport.MAX_MAX_COUNT)
    settings = backport.read(topic_subscription("http://x/h", MEASURE, content="empty", heartbeat=60, timeout=5,
                                                max_count=10))
    assert (settings.content, settings.heartbeat_s, settings.timeout_s, settings.max_count) == ("empty", 60, 5.0, 10)
    with pytest.raises(backport.Invalid) as refused:
        backport.read(topic_subscription("http://x/h", MEASURE, max_count=0))
    assert refused.value.path == "channel.extension"


# mongomock is not thread-safe (seen: "OrderedDict mutated during iteration" inside it, and a lost counter):
# the race runs on SQLite, and on a real MongoDB when RELAIS_TEST_MONGODB_URI names one.
@pytest.mark.parametrize("kind", [kind for kind in BACKENDS if kind != "mongomock"])
def test_event_numbers_are_gapless_under_concurrency_and_once_per_version(tmp_path, kind):
    store = make_store(kind, tmp_path, durable=False)
    try:
        def focus(i: int) -> ledger.Event:
            return ledger.Event(0, "2026-12-01T00:00:00Z", "Observation", f"o{i}", 1, "POST")

        threads = [threading.Thread(target=lambda k=k: [ledger.assign(store, "s1", focus(k * 10 + i))
                                                        for i in range(10)]) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert ledger.last_number(store, "s1") == 40
        events = ledger.events(store, "s1", list(range(1, 41)))
        assert sorted(e.id for e in events) == sorted(f"o{i}" for i in range(40))
        # handled again (a dispatcher died before marking the event done): the same number
        again = ledger.assign(store, "s1", focus(7))
        assert again.number == next(e.number for e in events if e.id == "o7")
        assert ledger.last_number(store, "s1") == 40
        # a process died between the event record and its source: found while searching, reused
        orphan = ledger.Event(1, "2026-12-01T00:00:00Z", "Observation", "o99", 1, "POST")
        store.kv_insert(ledger.EVENTS, "s2#000000000001", orphan.as_doc(ledger.source_of("Observation", "o99", 1)))
        assert ledger.assign(store, "s2", focus(99)).number == 1
        assert ledger.assign(store, "s2", focus(100)).number == 2
    finally:
        store.close()


def test_the_notification_bundle_shape():
    event = ledger.Event(3, "2026-12-01T00:00:00Z", "Observation", "o1", 2, "PUT")
    hidden = ledger.Event(4, "2026-12-01T00:00:01Z", "Observation", "o2", 1, "POST")
    sub = {"resourceType": "Subscription", "id": "s1", "status": "active"}
    body = notifications.notification("http://srv/fhir", sub, MEASURE, notifications.EVENT_NOTIFICATION, 4,
                                      [(event, {"resourceType": "Observation", "id": "o1"}, True),
                                       (hidden, None, False)], "full-resource")
    assert body["type"] == "history" and body["meta"]["profile"] == [backport.NOTIFICATION_PROFILE]
    status = body["entry"][0]["resource"]
    assert status["meta"]["profile"] == [backport.STATUS_PROFILE]
    assert body["entry"][0]["request"]["url"] == "http://srv/fhir/Subscription/s1/$status"
    values = [(p["name"], p.get("valueString") or p.get("valueCode") or p.get("valueCanonical"))
              for p in status["parameter"] if "part" not in p]
    assert values == [("subscription", None), ("topic", MEASURE), ("status", "active"),
                      ("type", "event-notification"), ("events-since-subscription-start", "4")]
    events = [p["part"] for p in status["parameter"] if p["name"] == "notification-event"]
    assert [[part["name"] for part in parts] for parts in events] == [["event-number", "timestamp", "focus"],
                                                                        ["event-number", "timestamp"]]
    assert body["entry"][1] == {"fullUrl": "http://srv/fhir/Observation/o1",
                                "resource": {"resourceType": "Observation", "id": "o1"},
                                "request": {"method": "PUT", "url": "Observation/o1"}, "response": {"status": "200"}}
    assert len(body["entry"]) == 2


def test_headers_are_masked_for_anyone_but_the_owner():
    owned = {"resourceType": "Subscription", "id": "s", "channel": {"header": ["Authorization: Bearer x"]},
             "extension": [{"url": OWNER_URL, "valueIdentifier": {"value": "a"}}]}
    assert masking.masked(owned, "a") is owned and masking.masked(owned, None) is owned
    assert masking.masked(owned, "b")["channel"]["header"] == ["Authorization: ****"]
    page = {"resourceType": "Bundle", "entry": [{"resource": owned}, {"resource": {"resourceType": "Patient"}}]}
    assert masking.masked(page, "b")["entry"][0]["resource"]["channel"]["header"] == ["Authorization: ****"]
    assert owned["channel"]["header"] == ["Authorization: Bearer x"]  # the stored copy untouched


def test_lanes_and_backoff():
    assert lanes.lane_of("http://a/h", "s1", 1) == lanes.lane_of("http://a/h", "s2", 1)
    assert lanes.lane_of("http://a/h", "s1", 1) != lanes.lane_of("http://b/h", "s1", 1)
    assert len({lanes.lane_of("http://a/h", f"s{i}", 4) for i in range(50)}) == 4
    assert [lanes.backoff(n) for n in range(1, 13)] == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]
    # 24 hours of retries at this backoff: about a hundred attempts, never one given up early
    elapsed, attempts = 0.0, 0
    while elapsed < 24 * 3600:
        attempts += 1
        elapsed += lanes.backoff(attempts)
    assert 90 < attempts < 110
