"""Telemonitoring feed benchmark: vendor JSON against the same Observations as FHIR transaction Bundles.

Starts gunicorn (2 workers, embedded SQLite store, authentication off: both ways pay the same for it), creates
the patients (with their INS) and the devices, then in the same run, phases interleaved (FHIR, JSON, FHIR, JSON):

- FHIR: 4 clients post transaction Bundles of 50 Observations (POST entries; subject ``Patient/<id>``, device
  ``Device/<id>``), the Observations the vendor JSON gives, built by the telemonitoring mapper itself;
- JSON: 4 clients post ``POST /feeds/telemonitoring`` batches of 50 measures (patient by INS, device by its id):
  the mapping, the patient matching, the per-measure deduplication and the record of each payload included.

Each phase's measures are new (fresh measure ids), so nothing is "unchanged". Reported: measures stored per
second (wall clock, first request to last answer, the background work drained), server CPU a measure, and the
ratio JSON / FHIR, per round and over the whole run (all measures over all answering time, each way).

The order of the two phases alternates from one round to the next (FHIR then JSON, JSON then FHIR), so that
neither always runs on the larger database nor always after the other's background work; the run's ratio is
the figure to read, the rounds' ratios move with the machine's noise (on 2 cores, +-15 % from one phase to
the next for the same work).

Triage rules are off (an empty RELAIS_RULES_DIR) unless ``--triage``: the target is about what mapping and
matching cost, and triage's background work for a measure is the same whichever way it came in, but grows with
each patient's history, so it would weigh on whichever phase runs later (bench/triage.py measures it).

    .venv/bin/python bench/feeds.py [--batches 40] [--clients 4] [--rounds 4] [--in-process] [--triage]

``--in-process`` first compares the two in this process's CPU time, without HTTP (see ``in_process``).

Target (issue 16): the vendor JSON at least 0.8 x the FHIR transaction rate.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from served import await_idle, cpu_seconds, start_gunicorn  # noqa: E402

from mappers.json_feed import Context  # noqa: E402
from mappers.telemonitoring import map_payload  # noqa: E402

BATCH = 50
PATIENTS = 20
TYPES = [("weight", 72.4, "kg"), ("heart-rate", 64, "/min"), ("spo2", 96, "%"), ("temperature", 37.1, "Cel"),
         ("glucose", 104, "mg/dL")]


def _ins(n: int) -> str:
    return f"2480175{n:03d}45{n:03d}12"[:15]


def measures(phase: str, client: int, batch: int) -> list[dict]:
    """50 measures of one batch, each new (its id names the phase, client and batch)."""
    found = []
    for i in range(BATCH):
        kind, value, unit = TYPES[i % len(TYPES)]
        minute = i % 60
        found.append({"id": f"{phase}-{client}-{batch}-{i}", "type": kind, "value": value + (i % 7) / 10,
                      "unit": unit, "time": f"2026-12-01T07:{minute:02d}:00+01:00"})
    return found


def vendor_payload(phase: str, client: int, batch: int) -> dict:
    return {"patient": {"ins": _ins((client * 7 + batch) % PATIENTS)},
            "device": {"id": f"SN-{client}", "manufacturer": "Acme", "model": "M-1", "type": "multi"},
            "measures": measures(phase, client, batch)}


def fhir_bundle(phase: str, client: int, batch: int, patients: dict[str, str], devices: dict[str, str]) -> dict:
    """The Observations the vendor JSON of the same batch gives, as a transaction of 50 POST entries."""
    doc = vendor_payload(phase, client, batch)
    mapped = map_payload(json.dumps(doc), Context("bench", datetime.now(UTC)))
    assert mapped.problem is None, mapped.problem
    subject = {"reference": f"Patient/{patients[doc['patient']['ins']]}"}
    device = {"reference": f"Device/{devices[doc['device']['id']]}"}
    entries = []
    for change in mapped.changes:
        if change.resource_type != "Observation":
            continue
        resource = {k: v for k, v in change.resource.items() if k != "id"}
        resource.update(subject=subject, device=device)
        entries.append({"resource": resource, "request": {"method": "POST", "url": "Observation"}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _load(args: tuple) -> list[float]:
    port, path, bodies = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    latencies = []
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", path, body, {"Content-Type": "application/json", "Accept": "application/json"})
        response = conn.getresponse()
        text = response.read()
        if response.status != 200:
            raise SystemExit(f"{path} answered {response.status}: {text[:300]!r}")
        if path.startswith("/feeds") and b'"rejected"' in text:
            raise SystemExit(f"a measure was rejected: {text[:300]!r}")
        latencies.append(time.perf_counter() - start)
    return latencies


def _post(port: int, path: str, body: dict) -> dict:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/fhir+json"})
    response = conn.getresponse()
    answer = json.loads(response.read())
    if response.status not in (200, 201):
        raise SystemExit(f"set-up {path}: {response.status} {answer}")
    return answer


def _phase(pool, pid: int, port: int, path: str, per_client: list[list[bytes]]) -> dict:
    await_idle(pid)
    cpu = cpu_seconds(pid)
    start = time.perf_counter()
    latencies = [x for chunk in pool.map(_load, [(port, path, bodies) for bodies in per_client]) for x in chunk]
    answered = time.perf_counter() - start
    await_idle(pid)  # the audit trail and outbox each payload left are part of its cost
    wall = time.perf_counter() - start
    stored = sum(len(bodies) for bodies in per_client) * BATCH
    latencies.sort()
    return {"measures": stored, "answered_s": answered, "wall_s": wall, "rate": stored / answered,
            "server_cpu_ms_measure": (cpu_seconds(pid) - cpu) * 1000 / stored,
            "p50_ms": latencies[len(latencies) // 2] * 1000, "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000}


def in_process(batches: int, rounds: int) -> None:
    """The same comparison without HTTP, in this process's CPU time: ``feed.ingest`` of the vendor JSON against
    ``bundles.process`` of the FHIR transactions, on one SQLite store, interleaved. What the server does for
    each, without the load of the machine's other processes in the figure (CPU time, not wall clock)."""
    import orjson

    from fhir_server import bundles, write
    from fhir_server.search.parser import parse
    from fhir_server.store import open_store
    from mappers import feed
    from mappers.telemonitoring import feed_mapper

    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/bench.db")
        write.write(store, [write.Change(write.CREATE, "Patient", resource={"resourceType": "Patient", "identifier": [
            {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": _ins(n)}]}) for n in range(PATIENTS)], None)
        patients = {_ins(n): store.search(parse("Patient", [("identifier", f"urn:oid:1.2.250.1.213.1.4.8|{_ins(n)}")],
                                                strict=True)).ids[0] for n in range(PATIENTS)}
        source = feed.Source("http", "127.0.0.1", None)

        def json_phase(phase: str) -> None:
            for b in range(batches):
                mapper = feed_mapper(Context("anonymous", datetime.now(UTC)))
                answer = feed.ingest(store, mapper, json.dumps(vendor_payload(phase, 0, b)).encode(), None, source,
                                     "http://127.0.0.1/fhir").answer
                assert answer["status"] == 200, answer

        def fhir_phase(phase: str) -> None:
            for b in range(batches):
                body = json.dumps(fhir_bundle(phase, 0, b, patients, {"SN-0": _device_id("SN-0")})).encode()
                bundles.process(store, orjson.loads(body), bundles.Options(base="http://127.0.0.1/fhir"))

        json_phase("warm")
        fhir_phase("warm")
        figures: dict[str, list[float]] = {"fhir": [], "json": []}
        for round_ in range(rounds):
            for way, phase in (("fhir", fhir_phase), ("json", json_phase)):
                start = time.process_time()
                phase(f"{way}{round_}")
                figures[way].append((time.process_time() - start) * 1000 / (batches * BATCH))
        store.close()
    for way, values in figures.items():
        print(f"in process, {way}: {', '.join(f'{v:.3f}' for v in values)} ms CPU a measure")
    print("ratio FHIR / JSON CPU a measure (JSON measures/s over FHIR's, CPU-bound), per round: "
          + ", ".join(f"{f / j:.2f}" for f, j in zip(figures["fhir"], figures["json"], strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=40, help="batches of 50 per client and phase")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=4, help="a FHIR and a JSON phase, this many times")
    parser.add_argument("--in-process", action="store_true", help="also compare without HTTP, in CPU time")
    parser.add_argument("--triage", action="store_true", help="keep the default triage rules on")
    args = parser.parse_args()
    if args.in_process:
        in_process(args.batches, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        env = {} if args.triage else {"RELAIS_RULES_DIR": str(Path(tmp) / "no-rules")}
        (Path(tmp) / "no-rules").mkdir()
        proc, port = start_gunicorn(f"sqlite:///{tmp}/bench.db", 2, env)
        try:
            patients = {}
            for n in range(PATIENTS):
                ins = _ins(n)
                created = _post(port, "/fhir/Patient", {"resourceType": "Patient", "identifier": [
                    {"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins}]})
                patients[ins] = created["id"]
            for client in range(args.clients):
                # the device the JSON feed finds by its id: a warm-up measure creates it, under its stable id
                doc = vendor_payload("warm", client, 0)
                doc["measures"] = doc["measures"][:1]
                _post(port, "/feeds/telemonitoring", doc)
            devices = {f"SN-{client}": _device_id(f"SN-{client}") for client in range(args.clients)}
            results: dict[str, list[dict]] = {"fhir": [], "json": []}
            with multiprocessing.Pool(args.clients) as pool:
                for round_ in range(args.rounds):
                    bundles = [[json.dumps(fhir_bundle(f"f{round_}", c, b, patients, devices)).encode()
                                for b in range(args.batches)] for c in range(args.clients)]
                    payloads = [[json.dumps(vendor_payload(f"j{round_}", c, b)).encode()
                                 for b in range(args.batches)] for c in range(args.clients)]
                    phases = [("fhir", "/fhir", bundles), ("json", "/feeds/telemonitoring", payloads)]
                    for way, path, bodies in phases if round_ % 2 == 0 else phases[::-1]:
                        results[way].append(_phase(pool, proc.pid, port, path, bodies))
        finally:
            proc.terminate()
            proc.wait(30)
    for way, runs in results.items():
        for n, run in enumerate(runs):
            print(f"{way} round {n}: {run['measures']} measures, {run['rate']:.0f} measures/s "
                  f"(answered in {run['answered_s']:.2f} s, drained {run['wall_s']:.2f} s), server CPU "
                  f"{run['server_cpu_ms_measure']:.3f} ms a measure, p50 {run['p50_ms']:.0f} ms, p99 "
                  f"{run['p99_ms']:.0f} ms a batch")
    ratios = [j["rate"] / f["rate"] for f, j in zip(results["fhir"], results["json"], strict=True)]
    cpu = [f["server_cpu_ms_measure"] / j["server_cpu_ms_measure"]
           for f, j in zip(results["fhir"], results["json"], strict=True)]
    print(f"ratio JSON / FHIR (measures/s), per round: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"server CPU a measure FHIR / JSON: {', '.join(f'{r:.2f}' for r in cpu)}")
    overall = {way: sum(r["measures"] for r in runs) / sum(r["answered_s"] for r in runs)
               for way, runs in results.items()}
    cpu_all = {way: sum(r["server_cpu_ms_measure"] * r["measures"] for r in runs) / sum(r["measures"] for r in runs)
               for way, runs in results.items()}
    print(f"whole run: FHIR {overall['fhir']:.0f} measures/s ({cpu_all['fhir']:.3f} ms server CPU a measure), JSON "
          f"{overall['json']:.0f} ({cpu_all['json']:.3f} ms): ratio JSON / FHIR {overall['json'] / overall['fhir']:.2f}"
          f" (target >= 0.8)")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")


def _device_id(serial: str) -> str:
    """The Device the feed created for ``serial``: its stable id, sender-scoped (anonymous: authentication off)."""
    from mappers.json_feed import sender_system, stable_id
    from mappers.json_http import ANONYMOUS

    return stable_id("Device", sender_system(ANONYMOUS, "device"), serial)


if __name__ == "__main__":
    main()
