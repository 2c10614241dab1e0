"""Subscription test kit: a real HTTP receiver on loopback that records what the server sends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from kit.live import LiveServer
from werkzeug.wrappers import Request, Response


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived

    def resource(self) -> dict | None:
        return json.loads(self.body) if self.body else None


class Receiver:
    """A loopback HTTP endpoint recording every POST and PUT; the first ``fail_first`` get 503."""

    def __init__(self, port: int | None = None, fail_first: int = 0):
        self.received: list[Received] = []
        self.refused = 0
        self.fail_first = fail_first
        self._lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            if request.method not in ("POST", "PUT"):
                return Response(status=405)
            body = request.get_data()
            query = request.query_string.decode()
            with self._lock:
                if self.refused < self.fail_first:
                    self.refused += 1
                    return Response(status=503)
                path = request.path + (f"?{query}" if query else "")
                self.received.append(Received(request.method, path, dict(request.headers), body, time.monotonic()))
            return Response(status=200)

        self.served = LiveServer(app, port)
        self.url = f"{self.served.origin}/hook"

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """The requests received once there are ``count`` of them (AssertionError at the deadline)."""
        return poll(lambda: len(self.snapshot()) >= count, timeout_s, f"{count} notification(s)") and self.snapshot()

    def close(self) -> None:
        self.served.close()


def poll(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    """``condition()`` once it is truthy, checked every 20 ms until the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout_s} s")
        time.sleep(0.02)  # polling interval, not synchronisation: the deadline decides


def lanes_empty(store) -> bool:
    """Whether every endpoint's lane (courier.py) has been delivered, or dropped."""
    from fhir_server.subscriptions.lanes import LANES, lane_table

    return all(not list(store.kv_list(lane_table(lane))) for lane, _doc in store.kv_list(LANES))


def settled(store, timeout_s: float = 20.0) -> None:
    """Wait until every outbox event is handled and every lane delivered, the audits of those deliveries
    stored too (a lane's entry goes once its delivery's audit is queued: so the outbox is looked at last)."""
    poll(lambda: store.outbox_pending() == 0 and lanes_empty(store) and store.outbox_pending() == 0, timeout_s,
         "an empty outbox and empty lanes")


def audit_trail_caught_up(live: LiveServer, focus: str, timeout_s: float = 5) -> None:
    """Wait until the AuditEvent of the write of ``focus`` (``Observation/<id>``) is stored and the outbox is
    empty: the audit trail was not held back (by a hanging endpoint)."""
    poll(lambda: live.get("AuditEvent", params={"entity": focus}).json().get("total", 0) >= 1, timeout_s,
         "the last write's AuditEvent")
    poll(lambda: live.store.outbox_pending() == 0, timeout_s, "empty outbox")


def subscription(endpoint: str, criteria: str, payload: str | None = "application/fhir+json", **extra) -> dict:
    channel: dict = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = payload
    channel.update(extra.pop("channel", {}))
    return {"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": criteria,
            "channel": channel, **extra}
