"""Triage latency: from POST Observation (201) to the Task in $worklist, and to a rest-hook subscriber on Tasks.

    .venv/bin/python bench/triage.py [--rate 50] [--seconds 60] [--workers 2] [--rules 200]

A gunicorn server (auth off, scheduler on) on a fresh SQLite store; measures are posted at ``--rate`` a
second for ``--seconds``, one in five dangerous (glucose 50 mg/dL, each for a patient of its own so that it
opens a Task; the others normal glucose and weight). For each dangerous one:
- worklist: after the 201, ``GET Task/$worklist?patient=...`` every 10 ms (after 100 ms, every 50 ms) until
  a Task whose focus is the measure comes back (the figure's resolution is that interval);
- rest-hook: a Subscription on triage Tasks (payload) notifies a receiver in this process, which matches
  the Task's focus to the measure.
Same-run baseline: the POST's own round trip. Then, in process: rule evaluation alone with ``--rules``
rules loaded (the default set plus generated threshold rules), against the default set alone.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from served import ROOT, await_idle, cpu_seconds
from served import start_gunicorn as _start_gunicorn

sys.path.insert(0, str(ROOT))

from fhir_server.codes import TRIAGE_ALERT  # noqa: E402

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
JSON = {"Content-Type": "application/fhir+json"}


def measure(code: str, value: float, unit: str, patient: str, at: str) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"coding": [{"system": LOINC, "code": code}]},
            "subject": {"reference": f"Patient/{patient}"}, "effectiveDateTime": at,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


def start_gunicorn(store_url: str, workers: int, threads: int):
    """gunicorn as served.start_gunicorn starts it, with ``threads`` a worker: the app serves requests
    concurrently (a sync worker holds each request behind the one before, polls included)."""
    if threads <= 1:
        return _start_gunicorn(store_url, workers=workers)
    import os
    import subprocess

    from kit.ports import free_port
    from kit.processes import spawn_server

    port = free_port()
    environment = {**os.environ, "RELAIS_STORE": store_url, "RELAIS_AUTH": "off",
                   "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir"}
    command = [str(Path(sys.executable).with_name("gunicorn")), "-w", str(workers), "--threads", str(threads),
               "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"]
    proc: subprocess.Popen = spawn_server(command, environment, port, ROOT)
    return proc, port


class Receiver:
    """A rest-hook endpoint: the monotonic time each Task's focus was first notified."""

    def __init__(self) -> None:
        from kit.live import QuietHandler
        from kit.ports import free_port
        from werkzeug.serving import make_server
        from werkzeug.wrappers import Request, Response

        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()

        @Request.application
        def app(request: Request) -> Response:
            now = time.monotonic()
            try:
                focus = json.loads(request.get_data() or b"{}").get("focus", {}).get("reference")
            except ValueError:
                focus = None
            if focus:
                with self.lock:
                    self.seen.setdefault(focus, now)
            return Response("", 200)

        self.port = free_port()
        self.server = make_server("127.0.0.1", self.port, app, threaded=True, request_handler=QuietHandler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def run_latency(args: argparse.Namespace) -> dict:
    directory = Path(tempfile.mkdtemp(prefix="relais-triage-bench-"))
    proc, port = start_gunicorn(f"sqlite:///{directory / 'relais.db'}", workers=args.workers,
                                threads=args.threads)
    base = f"http://127.0.0.1:{port}/fhir"
    session = requests.Session()
    receiver = Receiver()
    total = int(args.rate * args.seconds)
    dangerous_every = 5
    patients = [f"p{i}" for i in range(total // dangerous_every + 1)]
    try:
        for patient in patients:
            session.put(f"{base}/Patient/{patient}", json={"resourceType": "Patient", "id": patient},
                        headers=JSON).raise_for_status()
        subscription = {"resourceType": "Subscription", "status": "requested", "reason": "bench",
                        "criteria": f"Task?code={TRIAGE_ALERT['system']}|{TRIAGE_ALERT['code']}",
                        "channel": {"type": "rest-hook", "endpoint": receiver.url, "payload": "application/fhir+json"}}
        session.post(f"{base}/Subscription", json=subscription, headers=JSON).raise_for_status()
        await_idle(proc.pid)
        cpu_before = cpu_seconds(proc.pid)
        posts: list[float] = []
        to_worklist: list[float] = []
        missing: list[str] = []
        sent: dict[str, float] = {}
        lock = threading.Lock()
        local = threading.local()

        def http() -> requests.Session:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            return local.session

        def one(i: int, due: float) -> None:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)  # pacing the load at --rate, not a synchronisation
            dangerous = i % dangerous_every == 0
            patient = patients[i // dangerous_every]
            at = f"2026-11-20T{8 + i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
            if dangerous:
                body = measure("2339-0", 50, "mg/dL", patient, at)
            elif i % 2:
                body = measure("2339-0", 110, "mg/dL", patient, at)
            else:
                body = measure("29463-7", 70 + random.random(), "kg", patient, at)
            start = time.monotonic()
            answer = http().post(f"{base}/Observation", json=body, headers=JSON)
            created = time.monotonic()
            answer.raise_for_status()
            with lock:
                posts.append(created - start)
            if not dangerous:
                return
            focus = f"Observation/{answer.json()['id']}"
            with lock:
                sent[focus] = created
            deadline = created + 30
            polls = 0
            while time.monotonic() < deadline:
                bundle = http().get(f"{base}/Task/$worklist", params={"patient": f"Patient/{patient}"}).json()
                tasks = [e["resource"] for e in bundle.get("entry", [])
                         if e.get("resource", {}).get("resourceType") == "Task"]
                if any(t.get("focus", {}).get("reference") == focus for t in tasks):
                    with lock:
                        to_worklist.append(time.monotonic() - created)
                    return
                polls += 1
                # every 10 ms for the first 100 ms (the figure's resolution), then every 50 ms: polls must not
                # become the server's main load when alerts lag
                time.sleep(0.01 if polls < 10 else 0.05)
            with lock:
                missing.append(focus)

        start = time.monotonic() + 0.5
        with ThreadPoolExecutor(max_workers=32) as pool:
            futures = [pool.submit(one, i, start + i / args.rate) for i in range(total)]
            for future in futures:
                future.result()
        wall = time.monotonic() - start
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(receiver.seen.keys() & sent.keys()) < len(sent):
            time.sleep(0.05)  # the last notifications may still be on their way
        to_hook = [receiver.seen[focus] - at for focus, at in sent.items() if focus in receiver.seen]
        await_idle(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu_before
    finally:
        proc.terminate()
        proc.wait()
    return {"measures": total, "wall_s": wall, "dangerous": len(sent), "posts": posts, "worklist": to_worklist,
            "hook": to_hook, "missing_worklist": len(missing), "missing_hook": len(sent) - len(to_hook),
            "server_cpu_s": cpu}


def generated_rules(count: int) -> str:
    """``count`` threshold rules on the vital signs, as YAML (the bench's extra rules)."""
    codes = [("8867-4", "/min", 60, 140), ("2708-6", "%", 85, 99), ("8310-5", "Cel", 35, 40),
             ("9279-1", "/min", 8, 30), ("29463-7", "kg", 40, 150), ("2339-0", "mg/dL", 50, 400)]
    lines = ["rules:"]
    for n in range(count):
        code, unit, low, high = codes[n % len(codes)]
        op = "above" if n % 2 else "below"
        threshold = round(low + (high - low) * ((n * 37) % 100) / 100, 1)
        lines += [f"  - id: generated-{n}", "    version: 1", f"    trigger: Observation?code={LOINC}|{code}",
                  "    class: acute", "    priority: urgent", f"    message: regle {n}",
                  f"    when: [{{value: {{{op}: {threshold}, unit: \"{unit}\"}}}}]", "    sources: [bench]"]
    return "\n".join(lines) + "\n"


def run_evaluation(args: argparse.Namespace) -> dict:
    """Rules × resources a second, in process, on a store holding each patient's last 3 days."""
    from fhir_server import write
    from fhir_server.actor import SERVER
    from fhir_server.store import open_store
    from rules.engine import evaluate
    from rules.facts import StoreFacts
    from rules.loader import load_directory, load_text
    from rules.model import RuleSet

    defaults = load_directory()
    extra = load_text(generated_rules(args.rules - len(defaults.rules)), "generated.rules.yaml")
    loaded = RuleSet.of([*defaults.rules, *extra])
    directory = Path(tempfile.mkdtemp(prefix="relais-triage-eval-"))
    store = open_store(f"sqlite:///{directory / 'eval.db'}?synchronous=normal")
    kinds = [("8867-4", "/min", 80), ("2708-6", "%", 95), ("8310-5", "Cel", 37.2), ("9279-1", "/min", 16),
             ("29463-7", "kg", 72), ("2339-0", "mg/dL", 100)]
    resources = []
    for i in range(args.resources):
        code, unit, value = kinds[i % len(kinds)]
        body = measure(code, value * (0.8 + 0.4 * random.random()), unit, f"p{i % 50}",
                       f"2026-11-{18 + i * 3 // args.resources:02d}T{i % 24:02d}:{i % 60:02d}:00Z")
        [result] = write.write(store, [write.Change(write.CREATE, "Observation", resource=body)], SERVER,
                               dangling=True)
        resources.append(result.version.resource)
    figures = {}
    for name, rules in (("default", defaults), ("loaded", loaded)):
        facts = StoreFacts(store)
        started = time.process_time()
        fired = sum(len(evaluate(rules, resource, facts)) for resource in resources)
        cpu = time.process_time() - started
        figures[name] = {"rules": len(rules.rules), "resources": len(resources), "cpu_s": cpu, "fired": fired,
                         "resources_per_s": len(resources) / cpu,
                         "rule_resources_per_s": len(rules.rules) * len(resources) / cpu}
    store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8, help="gunicorn threads a worker (gthread)")
    parser.add_argument("--rules", type=int, default=200)
    parser.add_argument("--resources", type=int, default=3000)
    parser.add_argument("--skip-latency", action="store_true")
    args = parser.parse_args()
    import os

    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores: {os.cpu_count()})")
    if not args.skip_latency:
        got = run_latency(args)
        print(f"load average after the latency run: {os.getloadavg()[0]:.1f}")
        ms = lambda values, q: 1000 * percentile(values, q)  # noqa: E731
        print(f"latency: {got['measures']} measures in {got['wall_s']:.1f} s ({got['measures'] / got['wall_s']:.1f}/s),"
              f" {got['dangerous']} dangerous; server CPU {got['server_cpu_s']:.1f} s")
        for name in ("posts", "worklist", "hook"):
            values = got[name]
            print(f"  {name:9} n={len(values):5}  p50 {ms(values, 0.5):7.1f} ms  p99 {ms(values, 0.99):7.1f} ms"
                  f"  max {1000 * max(values, default=float('nan')):7.1f} ms"
                  f"  mean {1000 * statistics.fmean(values) if values else float('nan'):7.1f} ms")
        print(f"  missing: worklist {got['missing_worklist']}, rest-hook {got['missing_hook']}")
        print(f"  ratio p50 worklist / POST: {percentile(got['worklist'], 0.5) / percentile(got['posts'], 0.5):.1f};"
              f" rest-hook / POST: {percentile(got['hook'], 0.5) / percentile(got['posts'], 0.5):.1f}")
    figures = run_evaluation(args)
    for name, f in figures.items():
        print(f"evaluation ({name}): {f['rules']} rules x {f['resources']} resources in {f['cpu_s']:.2f} s CPU:"
              f" {f['rule_resources_per_s']:,.0f} rules x resources/s, {f['resources_per_s']:,.0f} resources/s,"
              f" {f['fired']} firings")
    print(f"  ratio resources/s, {figures['loaded']['rules']} rules against {figures['default']['rules']}:"
          f" {figures['loaded']['resources_per_s'] / figures['default']['resources_per_s']:.2f}")


if __name__ == "__main__":
    main()
