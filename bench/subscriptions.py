"""Topic-based Subscriptions with 1,000 active ones of mixed topics and filters.

1. Matching in process: resource x Subscription tests per second (target >= 50,000/s), against two
   same-run baselines: the same filters as R4 criteria Subscriptions (the engine both share), and the
   same matching without the extraction shared by all Subscriptions (what it costs re-extracting).
2. End to end on loopback (``relais serve`` in its own process, the receivers in this one): writes at
   50 events/s, latency from the start of the write's request to the notification's arrival, p50 and
   p99 (target p99 < 1 s), to one receiver.
3. The same while another receiver hangs (it never answers: the server times out after 10 s and
   retries); ratio to 2.

    .venv/bin/python bench/subscriptions.py [--events 1000] [--rate 50]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from kit.live import LiveServer  # noqa: E402
from kit.ports import free_port  # noqa: E402
from kit.processes import REPOSITORY, stop_server  # noqa: E402
from werkzeug.wrappers import Request, Response  # noqa: E402

from bench.served import cpu_seconds  # noqa: E402
from tests.subscriptions.topickit import (  # noqa: E402
    DOCUMENT,
    MEASURE,
    PATIENT,
    TRIAGE,
    document,
    topic_subscription,
    triage_task,
    vital_sign,
)

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
PATIENTS = 200
CODES = ("8867-4", "8480-6", "8462-4", "29463-7", "8310-5")


def mixed_subscriptions(count: int, endpoint: str) -> list[dict]:
    """``count`` Subscriptions over the four topics, most of them filtered (patient, code, priority, owner)."""
    subs = []
    for i in range(count):
        kind = i % 8
        if kind in (0, 1, 2):
            subs.append(topic_subscription(endpoint, MEASURE, f"Observation?patient=Patient/p{i % PATIENTS}"))
        elif kind == 3:
            subs.append(topic_subscription(endpoint, MEASURE, f"Observation?patient=Patient/p{i % PATIENTS}"
                                                              f"&code=http://loinc.org|{CODES[i % len(CODES)]}"))
        elif kind == 4:
            priority = ("stat", "asap", "urgent", "routine")[i % 4]
            subs.append(topic_subscription(endpoint, TRIAGE, f"Task?priority={priority}&owner=CareTeam/t{i % 10}"))
        elif kind == 5:
            subs.append(topic_subscription(endpoint, DOCUMENT, f"DocumentReference?patient=Patient/p{i % PATIENTS}"))
        elif kind == 6:
            subs.append(topic_subscription(endpoint, PATIENT, f"_id=p{i % PATIENTS}"))
        else:
            priority = ("stat", "asap", "urgent", "routine")[i % 4]
            subs.append(topic_subscription(endpoint, TRIAGE, f"priority={priority}"))
    return subs


def mixed_resources(count: int) -> list[dict]:
    resources = []
    for i in range(count):
        kind = i % 4
        if kind in (0, 1):
            r = vital_sign(f"p{i % PATIENTS}", CODES[i % len(CODES)])
        elif kind == 2:
            r = triage_task(f"p{i % PATIENTS}", ("stat", "asap", "urgent", "routine")[i % 4], f"CareTeam/t{i % 10}")
        else:
            r = document(f"p{i % PATIENTS}")
        resources.append({**r, "id": f"r{i}"})
    return resources


def bench_matching(subscriptions: int = 1000, resources: int = 4000) -> dict:
    from fhir_server.search.matcher import matches
    from fhir_server.subscriptions import index
    from fhir_server.subscriptions.notify import matching
    from fhir_server.subscriptions.topics import topic_of

    subs = [{**s, "id": f"s{i}", "status": "active"} for i, s in enumerate(mixed_subscriptions(subscriptions,
                                                                                                 "http://x/h"))]
    topics = index.build_topics([(s, 1) for s in subs])
    # the same filters as R4 criteria: the topic's base search and its filters in one string
    classic = []
    for s in subs:
        topic = topic_of(s["criteria"])
        filters = [e["valueString"] for e in s.get("_criteria", {}).get("extension", [])]
        extra = "&".join(f.partition("?")[2] if "?" in f else f for f in filters)
        criteria = topic.criteria + (("&" if "?" in topic.criteria else "?") + extra if extra else "")
        classic.append(({**s, "criteria": criteria}, 1))
    criteria_index = index.build(classic)
    sample = mixed_resources(resources)
    now = time.time()

    def run(idx, shared: bool) -> tuple[int, int, float]:
        tests = found = 0
        started = time.process_time()
        for resource in sample if shared else sample[: len(sample) // 10]:  # a tenth: it is that much slower
            candidates = index.candidates(idx, resource["resourceType"], now)
            tests += len(candidates)
            if shared:
                found += len(matching(candidates, resource))
            else:
                found += sum(1 for s in candidates if matches(s.query, resource))
        return tests, found, time.process_time() - started

    run(topics, True)  # warm: compiled extractors
    results = {}
    for name, idx, shared in (("topics", topics, True), ("criteria", criteria_index, True),
                              ("topics, extraction per test", topics, False)):
        tests, found, cpu = min((run(idx, shared) for _ in range(3 if shared else 1)), key=lambda r: r[2])
        results[name] = {"tests": tests, "matches": found, "cpu_s": cpu, "tests_per_s": tests / cpu}
    return results


class Timing:
    """A receiver noting when each focus of each notification arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.notifications = 0
        self.lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            at = time.monotonic()
            bundle = json.loads(request.get_data())
            status = bundle["entry"][0]["resource"]["parameter"]
            with self.lock:
                self.notifications += 1
                for p in status:
                    if p["name"] == "notification-event":
                        for part in p["part"]:
                            if part["name"] == "focus":
                                self.arrived.setdefault(part["valueReference"]["reference"].rsplit("/", 1)[1], at)
            return Response(status=200)

        self.served = LiveServer(app)
        self.url = f"{self.served.origin}/hook"


class Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()
        self.requests = 0

        @Request.application
        def app(request: Request) -> Response:
            self.requests += 1
            self.release.wait(600)
            return Response(status=200)

        self.served = LiveServer(app)
        self.url = f"{self.served.origin}/hook"


def _wait(condition, deadline_s: float, what: str) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            raise RuntimeError(f"no {what} within {deadline_s} s")
        time.sleep(0.05)  # polling, bounded by the deadline


def paced_writes(base: str, events: int, rate: float, measured: Timing) -> dict:
    """POST ``events`` vital signs at ``rate``/s; latency of each from its request's start to its arrival."""
    session = requests.Session()
    sent: dict[str, float] = {}
    start = time.monotonic()
    for i in range(events):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing the load, not synchronising
        began = time.monotonic()
        response = session.post(f"{base}/Observation", headers=HEADERS, json=vital_sign(f"p{i % PATIENTS}",
                                                                                          CODES[i % len(CODES)]))
        assert response.status_code == 201, response.text
        sent[response.json()["id"]] = began
    took = time.monotonic() - start
    _wait(lambda: set(sent) <= set(measured.arrived), 120, "notification of every write")
    latencies = sorted(measured.arrived[i] - t for i, t in sent.items())
    return {"events": events, "achieved_rate": events / took, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))], "max_ms": 1000 * latencies[-1]}


def spawn_logged(env: dict[str, str], port: int, log: Path):
    """``relais serve`` writing its log to ``log``: a pipe nobody reads fills up and stops the server."""
    import subprocess

    from kit.processes import _die_with_parent

    command = [str(Path(sys.executable).with_name("relais")), "serve", "--port", str(port)]
    proc = subprocess.Popen(command, env=env, cwd=REPOSITORY, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent)

    def answers() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    _wait(answers, 60, "server")
    return proc


def bench_end_to_end(subscriptions: int, events: int, rate: float) -> dict:
    directory = Path(tempfile.mkdtemp(prefix="relais-bench-subs-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}/fhir"
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{directory / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_BASE_URL": base}
    measured, sink, hanging = Timing(), Timing(), Hanging()
    proc = spawn_logged(env, port, directory / "server.log")
    try:
        session = requests.Session()
        for i in range(PATIENTS):
            session.put(f"{base}/Patient/p{i}", headers=HEADERS, json={"resourceType": "Patient", "id": f"p{i}"})
        assert session.post(f"{base}/Subscription", headers=HEADERS,
                            json=topic_subscription(measured.url, MEASURE)).status_code == 201
        for body in mixed_subscriptions(subscriptions - 2, sink.url):
            assert session.post(f"{base}/Subscription", headers=HEADERS, json=body).status_code == 201
        print(f"{subscriptions - 1} Subscriptions created; waiting for their handshakes", flush=True)
        _wait(lambda: sink.notifications >= subscriptions - 2 and measured.notifications >= 1, 300, "handshakes")
        cpu_before = cpu_seconds(proc.pid)
        quiet = paced_writes(base, events, rate, measured)
        quiet["server_cpu_ms_per_event"] = 1000 * (cpu_seconds(proc.pid) - cpu_before) / events
        # the 1,000th Subscription: to an endpoint that never answers
        assert session.post(f"{base}/Subscription", headers=HEADERS,
                            json=topic_subscription(hanging.url, MEASURE)).status_code == 201
        _wait(lambda: hanging.requests >= 1, 60, "the hanging endpoint's first request")
        measured.arrived.clear()
        cpu_before = cpu_seconds(proc.pid)
        hung = paced_writes(base, events, rate, measured)
        hung["server_cpu_ms_per_event"] = 1000 * (cpu_seconds(proc.pid) - cpu_before) / events
        hung["hanging_requests"] = hanging.requests
        return {"quiet": quiet, "one_receiver_hanging": hung,
                "p99_ratio_hanging_to_quiet": hung["p99_ms"] / quiet["p99_ms"]}
    finally:
        hanging.release.set()
        stop_server(proc)
        for receiver in (measured, sink, hanging):
            receiver.served.close()


def report_matching(matching: dict) -> None:
    for name, r in matching.items():
        print(f"matching ({name}): {r['tests']:,} tests, {r['matches']:,} matches, {r['cpu_s']:.3f} s CPU, "
              f"{r['tests_per_s']:,.0f} tests/s")
    print(f"ratio topics / criteria: {matching['topics']['tests_per_s'] / matching['criteria']['tests_per_s']:.2f}; "
          f"shared extraction / per test: "
          f"{matching['topics']['tests_per_s'] / matching['topics, extraction per test']['tests_per_s']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=1000)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--skip-e2e", action="store_true")
    parser.add_argument("--skip-matching", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if not args.skip_matching:
        report_matching(bench_matching(args.subscriptions))
    if args.skip_e2e:
        return
    e2e = bench_end_to_end(args.subscriptions, args.events, args.rate)
    for name in ("quiet", "one_receiver_hanging"):
        r = e2e[name]
        print(f"end to end ({name}): {r['events']} events at {r['achieved_rate']:.1f}/s: p50 {r['p50_ms']:.0f} ms, "
              f"p99 {r['p99_ms']:.0f} ms, max {r['max_ms']:.0f} ms; server CPU {r['server_cpu_ms_per_event']:.1f} ms"
              " an event")
    print(f"p99 ratio hanging / quiet: {e2e['p99_ratio_hanging_to_quiet']:.2f}")


if __name__ == "__main__":
    main()
