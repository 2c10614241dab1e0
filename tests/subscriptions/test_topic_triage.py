"""From a dangerous measure to a coordinator's client: triage writes its alert (a Task), and the
triage-alert topic notifies the Subscriptions whose filters it meets, with the measure's own topic
notifying the measure. The real app, its default rule set, a real receiver."""

from __future__ import annotations

from tests.subscriptions.hookkit import Receiver
from tests.subscriptions.topickit import MEASURE, TRIAGE, VITAL_SIGNS, deliver, events_of, topic_subscription
from tests.triage.triagekit import blood_pressure


def test_a_hypertensive_crisis_reaches_the_triage_alert_subscribers(sqlite_server):
    live = sqlite_server
    live.put("Patient/p1", {"resourceType": "Patient", "id": "p1"})
    deliver(live.app)
    receiver = Receiver()
    try:
        oncall = live.post("Subscription", topic_subscription(
            receiver.url, TRIAGE, "Task?priority=urgent&owner=Organization/on-call-coordination",
            content="full-resource")).json()
        routine = live.post("Subscription", topic_subscription(receiver.url, TRIAGE, "Task?priority=routine")).json()
        measures = live.post("Subscription", topic_subscription(receiver.url, MEASURE, "patient=Patient/p1")).json()
        measure = live.post("Observation", {**blood_pressure(185, 95), "category": [VITAL_SIGNS]}).json()
        deliver(live.app)  # the measure matched, triage ran, its Task matched in turn
        by_sub: dict[str, list] = {}
        for notice in events_of(receiver):
            by_sub.setdefault(notice.subscription.rsplit("/", 1)[1], []).append(notice)
        [alert] = by_sub[oncall["id"]]
        [task] = [e["resource"] for e in alert.entries]
        assert task["resourceType"] == "Task" and task["priority"] == "urgent"
        assert task["focus"] == {"reference": f"Observation/{measure['id']}"} and alert.numbers == [1]
        assert routine["id"] not in by_sub
        assert [f.rsplit("/", 1)[1] for n in by_sub[measures["id"]] for f in n.focus] == [measure["id"]]
    finally:
        receiver.close()
