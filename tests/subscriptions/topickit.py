"""Topic-based Subscription test kit: Subscriptions as the backport writes them, resources each topic
notifies, and what a notification Bundle says."""

from __future__ import annotations

import json
from dataclasses import dataclass

from kit.outbox import drain

from fhir_server.codes import TRIAGE_ALERT
from fhir_server.subscriptions import courier
from fhir_server.subscriptions.backport import (
    FILTER_CRITERIA,
    HEARTBEAT_PERIOD,
    MAX_COUNT,
    PAYLOAD_CONTENT,
    TIMEOUT,
)
from fhir_server.subscriptions.settings import from_config
from fhir_server.subscriptions.topics import TOPIC_BASE

TRIAGE = f"{TOPIC_BASE}/triage-alert"
MEASURE = f"{TOPIC_BASE}/vital-signs-measure"
DOCUMENT = f"{TOPIC_BASE}/document"
PATIENT = f"{TOPIC_BASE}/patient"
VITAL_SIGNS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                           "code": "vital-signs"}]}


def topic_subscription(endpoint: str, topic: str, *filters: str, content: str | None = "id-only",
                       heartbeat: int | None = None, timeout: int | None = None, max_count: int | None = None,
                       header: list[str] | None = None, end: str | None = None) -> dict:  # fmt: skip
    """A Subscription to ``topic`` (R4 backport profile), filtered by ``filters`` (``Type?name=value``)."""
    channel: dict = {"type": "rest-hook", "endpoint": endpoint, "payload": "application/fhir+json"}
    extensions = []
    if heartbeat is not None:
        extensions.append({"url": HEARTBEAT_PERIOD, "valueUnsignedInt": heartbeat})
    if timeout is not None:
        extensions.append({"url": TIMEOUT, "valueUnsignedInt": timeout})
    if max_count is not None:
        extensions.append({"url": MAX_COUNT, "valuePositiveInt": max_count})
    if extensions:
        channel["extension"] = extensions
    if content is not None:
        channel["_payload"] = {"extension": [{"url": PAYLOAD_CONTENT, "valueCode": content}]}
    if header:
        channel["header"] = header
    body: dict = {"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": topic,
                  "channel": channel}
    if filters:
        body["_criteria"] = {"extension": [{"url": FILTER_CRITERIA, "valueString": f} for f in filters]}
    if end:
        body["end"] = end
    return body


def vital_sign(patient: str = "p1", code: str = "8867-4", value: float = 80.0) -> dict:
    """A heart rate (by default) in the vital-signs category."""
    return {"resourceType": "Observation", "status": "final", "category": [VITAL_SIGNS],
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": "2026-12-01T08:00:00Z",
            "valueQuantity": {"value": value, "unit": "/min", "system": "http://unitsofmeasure.org",
                              "code": "/min"}}


def triage_task(patient: str = "p1", priority: str = "urgent", owner: str | None = None,
                status: str = "requested") -> dict:  # fmt: skip
    """A triage alert as the triage engine writes one (codes.TRIAGE_ALERT)."""
    task: dict = {"resourceType": "Task", "status": status, "intent": "order", "priority": priority,
                  "code": {"coding": [TRIAGE_ALERT]}, "for": {"reference": f"Patient/{patient}"}}
    if owner:
        task["owner"] = {"reference": owner}
    return task


def document(patient: str = "p1") -> dict:
    return {"resourceType": "DocumentReference", "status": "current", "subject": {"reference": f"Patient/{patient}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": "Qm9uam91cg=="}}]}


@dataclass
class Notice:
    """What one notification Bundle said."""

    type: str
    subscription: str
    status: str
    since_start: int
    numbers: list[int]
    focus: list[str | None]
    entries: list[dict]
    headers: dict[str, str]


def notice(body: bytes | dict, headers: dict[str, str] | None = None) -> Notice:
    bundle = json.loads(body) if isinstance(body, bytes) else body
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "history", bundle
    status = bundle["entry"][0]["resource"]
    assert status["resourceType"] == "Parameters"
    values = {p["name"]: p for p in status["parameter"]}
    numbers, focus = [], []
    for p in status["parameter"]:
        if p["name"] == "notification-event":
            parts = {part["name"]: part for part in p["part"]}
            numbers.append(int(parts["event-number"]["valueString"]))
            focus.append(parts["focus"]["valueReference"]["reference"] if "focus" in parts else None)
    return Notice(values["type"]["valueCode"], values["subscription"]["valueReference"]["reference"],
                  values["status"]["valueCode"], int(values["events-since-subscription-start"]["valueString"]),
                  numbers, focus, bundle["entry"][1:], headers or {})


def notices(receiver) -> list[Notice]:
    return [notice(r.body, r.headers) for r in receiver.snapshot()]


def events_of(receiver) -> list[Notice]:
    return [n for n in notices(receiver) if n.type == "event-notification"]


def deliver(app, rounds: int = 3) -> None:
    """Match what was written (the outbox), then deliver every lane that is due, as the scheduler would."""
    for _ in range(rounds):
        drain(app)
        courier_of(app).run_once()


def courier_of(app) -> courier.Courier:
    return courier.for_store(app.extensions["relais_store"], from_config(app.config["RELAIS"]))


class Hanging:
    """A loopback endpoint that takes every request and answers only when released (or after ``hold_s``)."""

    def __init__(self, hold_s: float = 60.0):
        import threading
        import time

        from kit.live import LiveServer
        from werkzeug.wrappers import Request, Response

        self.release = threading.Event()
        self.arrived = 0
        self.times: list[float] = []  # time.monotonic() of each request's arrival
        lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            with lock:
                self.arrived += 1
                self.times.append(time.monotonic())
            self.release.wait(hold_s)
            return Response(status=200)

        self.served = LiveServer(app)
        self.url = f"{self.served.origin}/hook"

    def close(self) -> None:
        self.release.set()
        self.served.close()


def stop_background(live) -> None:
    """Stop a live app's scheduler, and with it its dispatcher and courier (started with ``scheduler=True``)."""
    live.app.extensions["relais_scheduler"].shutdown(wait=True)
    assert live.app.extensions["relais_courier"]._thread is None
