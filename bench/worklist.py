"""Task/$worklist and French complaint matching, each against a same-run baseline.

1. ``GET Task/$worklist?_count=20`` over real HTTP (gunicorn, 1 worker, embedded SQLite), a ward of
   PATIENTS patients with a médecin traitant and a care team of five each, OPEN open triage Tasks and
   CLOSED closed ones; baseline: the plain search a client would make without the operation,
   ``GET Task?code=...&status=...&_sort=authored-on&_include=Task:patient&_include=Task:focus&_count=20``
   (no priority order, no care team). Also ``$worklist?patient=...`` (one patient's alerts).
2. ``rules.french_text.find_mentions`` over the sentence table, in process, against a naive matcher
   (accent-folded lower case, ``phrase in text``: no plurals, typos, gaps or negation).

    .venv/bin/python bench/worklist.py [--patients 200] [--open 500] [--closed 500] [--requests 300]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from kit.stores import put_all  # noqa: E402
from served import exchange, start_gunicorn  # noqa: E402

from fhir_server import codes  # noqa: E402
from fhir_server.store import open_store  # noqa: E402
from rules import french_text  # noqa: E402

ROLES = ("advanced-practice-nurse", "nurse", "pharmacist", "physiotherapist", "other")
PRIORITIES = ("stat", "asap", "urgent", "routine")
STAMP = "2026-01-01T00:00:00Z"


def ward(patients: int, open_tasks: int, closed_tasks: int) -> list[dict]:
    out: list[dict] = []
    people = patients * 2
    for i in range(people):
        out.append({"resourceType": "Practitioner", "id": f"pr{i}", "meta": {"lastUpdated": STAMP},
                    "identifier": [{"system": codes.RPPS, "value": f"1{i:010d}"}],
                    "name": [{"family": f"Nom{i}", "given": ["Camille"]}],
                    "telecom": [{"system": "phone", "value": f"+33 1 00 {i:06d}"}]})  # fmt: skip
    for p in range(patients):
        out.append({"resourceType": "Patient", "id": f"p{p}", "meta": {"lastUpdated": STAMP},
                    "generalPractitioner": [{"reference": f"Practitioner/pr{p % people}"}]})  # fmt: skip
        out.append({"resourceType": "CareTeam", "id": f"ct{p}", "status": "active", "meta": {"lastUpdated": STAMP},
                    "subject": {"reference": f"Patient/p{p}"},
                    "participant": [{"member": {"reference": f"Practitioner/pr{(p * 5 + k) % people}"},
                                     "role": [{"coding": [{"system": codes.CARE_ROLE_SYSTEM, "code": role}]}]}
                                    for k, role in enumerate(ROLES)]})  # fmt: skip
    for t in range(open_tasks + closed_tasks):
        patient = f"p{t % patients}"
        out.append({"resourceType": "Observation", "id": f"o{t}", "status": "final", "meta": {"lastUpdated": STAMP},
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "subject": {"reference": f"Patient/{patient}"}, "valueQuantity": {"value": 185}})  # fmt: skip
        out.append({"resourceType": "Task", "id": f"t{t}", "meta": {"lastUpdated": STAMP}, "intent": "order",
                    "status": "requested" if t < open_tasks else "completed",
                    "priority": PRIORITIES[t % 4], "code": {"coding": [codes.TRIAGE_ALERT]},
                    "for": {"reference": f"Patient/{patient}"}, "focus": {"reference": f"Observation/o{t}"},
                    "owner": {"reference": "Organization/oncall"},
                    "authoredOn": f"2026-01-{1 + t % 28:02d}T{t % 24:02d}:00:00Z"})  # fmt: skip
    return out


def timed(port: int, path: str, n: int) -> list[float]:
    exchange(port, "GET", path, headers={"Accept": "application/fhir+json"})  # warm
    out = []
    for _ in range(n):
        start = time.perf_counter()
        status, body = exchange(port, "GET", path, headers={"Accept": "application/fhir+json"})
        out.append(time.perf_counter() - start)
        if status != 200:
            raise SystemExit(f"{path}: {status} {body[:300]!r}")
    return out


def summary(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return statistics.median(ordered) * 1000, ordered[int(0.99 * (len(ordered) - 1))] * 1000


def http_part(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        store = open_store(url)
        put_all(store, ward(args.patients, args.open, args.closed))
        store.close()
        proc, port = start_gunicorn(url, 1, {"RELAIS_SCHEDULER": "off"})
        try:
            code = f"{codes.TRIAGE_ALERT['system']}|{codes.TRIAGE_ALERT['code']}"
            plain = "/fhir/Task?" + urlencode([("code", code), ("status", "requested,in-progress"),
                                              ("_sort", "authored-on"), ("_include", "Task:patient"),
                                              ("_include", "Task:focus"), ("_count", "20")])  # fmt: skip
            status, body = exchange(port, "GET", "/fhir/Task/$worklist?_count=20",
                                    headers={"Accept": "application/fhir+json"})  # fmt: skip
            entries = len(json.loads(body)["entry"])
            rows = [("search with _include (baseline)", timed(port, plain, args.requests)),
                    ("Task/$worklist?_count=20", timed(port, "/fhir/Task/$worklist?_count=20", args.requests)),
                    ("Task/$worklist?patient=p7", timed(port, "/fhir/Task/$worklist?patient=p7", args.requests))]
        finally:
            proc.terminate()
            proc.wait()
    base = summary(rows[0][1])[0]
    print(f"\nward: {args.patients} patients, {args.open} open + {args.closed} closed triage Tasks; "
          f"a $worklist page of 20 Tasks has {entries} entries")  # fmt: skip
    print("| request | p50 ms | p99 ms | p50 / baseline |\n| --- | ---: | ---: | ---: |")
    for name, latencies in rows:
        p50, p99 = summary(latencies)
        print(f"| {name} | {p50:.1f} | {p99:.1f} | {p50 / base:.2f} |")


def text_part(seconds: float) -> None:
    table = ROOT / "tests" / "rules" / "french_sentences.tsv"
    with table.open(encoding="utf-8") as handle:
        sentences = [r["sentence"] for r in csv.DictReader((x for x in handle if not x.startswith("#")),
                                                           delimiter="\t")]  # fmt: skip
    concepts = french_text.load_concepts()
    folded = {c: [french_text.fold(p) for p in phrases if not p.startswith("!")] for c, phrases in concepts.items()}

    def naive(text: str) -> list[str]:
        text = french_text.fold(text)
        return [c for c, phrases in folded.items() if any(p in text for p in phrases)]

    def rate(match) -> float:
        for s in sentences:
            match(s)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for s in sentences:
                match(s)
            count += len(sentences)
        return count / (time.perf_counter() - start)

    base = rate(naive)
    ours = rate(lambda s: french_text.find_mentions(s, concepts))
    phrases = sum(len(v) for v in concepts.values())
    print(f"\n{len(sentences)} sentences, {len(concepts)} concepts, {phrases} phrases")
    print("| matcher | sentences/s | us a sentence | ratio to baseline |\n| --- | ---: | ---: | ---: |")
    print(f"| naive substring (baseline) | {base:,.0f} | {1e6 / base:.0f} | 1.00 |")
    print(f"| french_text.find_mentions | {ours:,.0f} | {1e6 / ours:.0f} | {ours / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--open", type=int, default=500)
    parser.add_argument("--closed", type=int, default=500, help="closed triage Tasks (they accumulate)")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=3.0, help="per matcher")
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    http_part(args)
    text_part(args.seconds)


if __name__ == "__main__":
    main()
