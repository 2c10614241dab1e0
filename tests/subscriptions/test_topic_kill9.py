"""Exactly once where it matters: ``kill -9`` of the server in the middle of a burst of writes loses no
notification. Every accepted write reaches the receiver with its event number; numbers are gapless;
a receiver that deduplicates by event number sees each event exactly once. The server runs in a
process of its own (``relais serve``), killed and started again on the same SQLite file."""

from __future__ import annotations

import json
import os
import threading

import requests
from kit.live import LiveServer
from kit.ports import free_port
from kit.processes import spawn_relais, stop_server
from werkzeug.wrappers import Request, Response

from tests.subscriptions.hookkit import poll
from tests.subscriptions.topickit import MEASURE, notice, topic_subscription, vital_sign

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


class Deduplicating:
    """A receiver keeping each event number once (what a careful client does), counting repeats."""

    def __init__(self) -> None:
        self.events: dict[int, str] = {}  # event number -> focus reference
        self.repeats = 0
        self.lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            got = notice(json.loads(request.get_data()))
            with self.lock:
                for number, focus in zip(got.numbers, got.focus, strict=True):
                    if number in self.events:
                        self.repeats += 1
                        assert self.events[number] == focus  # a number stands for one event forever
                    self.events[number] = focus  # type: ignore[assignment]
            return Response(status=200)

        self.served = LiveServer(app)
        self.url = f"{self.served.origin}/hook"

    def gapless(self) -> bool:
        with self.lock:
            return sorted(self.events) == list(range(1, len(self.events) + 1))


def test_kill_9_in_the_middle_of_a_burst_loses_no_notification(tmp_path):
    url = f"sqlite:///{tmp_path / 'relais.db'}"
    port = free_port()
    env = {**os.environ, "RELAIS_STORE": url, "RELAIS_AUTH": "off", "RELAIS_DISPATCHER_INTERVAL_S": "0.05",
           "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir"}
    base = f"http://127.0.0.1:{port}/fhir"
    receiver = Deduplicating()
    proc = spawn_relais(env, port)
    accepted: list[str] = []
    stop = threading.Event()
    try:
        assert requests.put(f"{base}/Patient/p1", headers=HEADERS,
                            json={"resourceType": "Patient", "id": "p1"}).status_code in (200, 201)
        created = requests.post(f"{base}/Subscription", headers=HEADERS, json=topic_subscription(receiver.url, MEASURE))
        assert created.status_code == 201, created.text

        def burst() -> None:
            session = requests.Session()
            while not stop.is_set():
                try:
                    response = session.post(f"{base}/Observation", headers=HEADERS, json=vital_sign(), timeout=5)
                except requests.RequestException:
                    continue  # the server is down: keep trying until it is back
                if response.status_code == 201:
                    accepted.append(response.json()["id"])

        writer = threading.Thread(target=burst, daemon=True)
        writer.start()
        poll(lambda: len(accepted) >= 15, 60, "15 writes accepted")
        proc.kill()  # SIGKILL: no clean-up of any kind
        proc.wait()
        proc = spawn_relais(env, port)
        poll(lambda: len(accepted) >= 40, 60, "40 writes accepted")
        stop.set()
        writer.join(timeout=10)
        wanted = {f"{base}/Observation/{i}" for i in accepted}
        # a write whose answer was lost in the kill was stored all the same: it is notified too
        poll(lambda: wanted <= set(receiver.events.values()), 180, "every accepted write notified")
        # a write whose answer was lost in the kill may come last: the killed process had numbered it but not
        # filed it, and its event is handled again only once that process's outbox lease runs out (60 s)
        poll(lambda: receiver.gapless(), 180, "every event number up to the last")
        with receiver.lock:
            numbers = sorted(receiver.events)
            foci = list(receiver.events.values())
        assert numbers == list(range(1, len(numbers) + 1))  # gapless
        assert len(foci) == len(set(foci))  # one number per write
        status = requests.get(f"{base}/Subscription/{created.json()['id']}/$status", headers=HEADERS).json()
        since = {p["name"]: p for p in status["entry"][0]["resource"]["parameter"]}["events-since-subscription-start"]
        assert int(since["valueString"]) == len(numbers)
    finally:
        stop.set()
        stop_server(proc)
        receiver.served.close()
