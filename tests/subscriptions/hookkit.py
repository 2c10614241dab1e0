"""Subscription test kit: a real HTTP receiver on loopback that records what the server sends."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


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
    """An HTTP server on 127.0.0.1 recording every request; the first ``fail_first`` get 503."""

    def __init__(self, port: int = 0, fail_first: int = 0):
        self.received: list[Received] = []
        self.refused = 0
        self.fail_first = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with receiver._lock:
                    if receiver.refused < receiver.fail_first:
                        receiver.refused += 1
                        status = 503
                    else:
                        receiver.received.append(Received(self.command, self.path, dict(self.headers), body,
                                                          time.monotonic()))
                        status = 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_POST = do_PUT = _record

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout_s: float = 20.0) -> list[Received]:
        """The requests received once there are ``count`` of them (AssertionError at the deadline)."""
        return poll(lambda: len(self.snapshot()) >= count, timeout_s, f"{count} notification(s)") and self.snapshot()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


def subscription(endpoint: str, criteria: str, payload: str | None = "application/fhir+json", **extra) -> dict:
    channel: dict = {"type": "rest-hook", "endpoint": endpoint}
    if payload:
        channel["payload"] = payload
    channel.update(extra.pop("channel", {}))
    return {"resourceType": "Subscription", "status": "requested", "reason": "test", "criteria": criteria,
            "channel": channel, **extra}
