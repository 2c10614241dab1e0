"""CRUD benchmark: creates, reads and updates of Observations over HTTP, against a baseline.

Starts gunicorn (2 workers, embedded SQLite store) and drives it from separate load processes,
then performs the same operations straight against the store (no HTTP, no validation) in the
same run. Prints throughput, p50 and p99 of both, and their ratio.

    .venv/bin/python bench/crud.py [--n 20000] [--clients 4]
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from served import await_idle, cpu_seconds, exchange, start_gunicorn  # noqa: E402

HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def observation(i: int) -> dict:
    """A realistic telemonitoring measure: body weight of one of 200 patients."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
        "subject": {"reference": f"Patient/p{i % 200}"},
        "effectiveDateTime": f"2026-{1 + i % 12:02d}-{1 + i % 28:02d}T08:00:00+01:00",
        "valueQuantity": {"value": 60 + (i % 400) / 10, "unit": "kg", "system": "http://unitsofmeasure.org",
                          "code": "kg"},
    }


def _load(args: tuple) -> tuple[list[float], list[str], float]:
    """One load process: its share of one phase, a connection per request.

    Keep-alive connections stick to the worker that accepted them (measured: one of two workers
    at 93% CPU, the other idle); a new connection goes to whichever worker is free, as behind a proxy.
    """
    port, phase, items = args
    latencies, ids = [], []
    cpu = time.process_time()
    for item in items:
        start = time.perf_counter()
        if phase == "create":
            status, data = exchange(port, "POST", "/fhir/Observation", json.dumps(observation(item)).encode(), HEADERS)
        elif phase == "read":
            status, data = exchange(port, "GET", f"/fhir/Observation/{item}", headers=HEADERS)
        else:
            body = {**observation(7), "id": item, "status": "amended"}
            status, data = exchange(port, "PUT", f"/fhir/Observation/{item}", json.dumps(body).encode(), HEADERS)
        latencies.append(time.perf_counter() - start)
        if status >= 300:
            raise RuntimeError(f"{phase}: {status} {data[:200]!r}")
        if phase == "create":
            ids.append(json.loads(data)["id"])
    return latencies, ids, time.process_time() - cpu


def _reference_patients(port: int) -> None:
    """The 200 Patients the Observations name: a reference to a missing one is refused (422)."""
    for k in range(200):
        body = json.dumps({"resourceType": "Patient", "id": f"p{k}"}).encode()
        status, data = exchange(port, "PUT", f"/fhir/Patient/p{k}", body, HEADERS)
        if status >= 300:
            raise RuntimeError(f"Patient/p{k}: {status} {data[:200]!r}")


def _run_phase(pool, server_pid: int, port: int, phase: str, items: list, clients: int) -> tuple[dict, list[str]]:
    shares = [items[k::clients] for k in range(clients)]
    cpu = cpu_seconds(server_pid)
    start = time.perf_counter()
    results = pool.map(_load, [(port, phase, share) for share in shares])
    elapsed = time.perf_counter() - start
    # Background work a phase causes (audit trail, outbox) counts in its CPU: wait until it is done.
    await_idle(server_pid)
    server_cpu = cpu_seconds(server_pid) - cpu
    latencies = [x for lat, _, _ in results for x in lat]
    ids = [x for _, share_ids, _ in results for x in share_ids]
    figures = _figures(len(items), elapsed, latencies)
    figures["server_cpu_ms"] = 1000 * server_cpu / len(items)
    figures["load_cpu_ms"] = 1000 * sum(c for _, _, c in results) / len(items)
    return figures, ids


def _figures(n: int, elapsed: float, latencies: list[float]) -> dict:
    latencies = sorted(latencies)
    return {"ops": n, "per_s": n / elapsed, "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))]}


def _baseline(n: int, directory: Path, synchronous: str) -> dict[str, dict]:
    """The same operations straight against the store: no HTTP, no validation."""
    from fhir_server.search.extract import index_values
    from fhir_server.store import StoredVersion, open_store

    store = open_store(f"sqlite:///{directory / 'baseline.db'}?synchronous={synchronous}")
    resources = []
    for i in range(n):
        body = {**observation(i), "id": str(uuid.uuid4()), "meta": {"versionId": "1",
                                                                     "lastUpdated": "2026-11-23T10:00:00.000Z"}}
        resources.append((body, index_values(body)))
    figures = {}
    for phase in ("create", "read", "update"):
        latencies = []
        start = time.perf_counter()
        for body, index in resources:
            t0 = time.perf_counter()
            if phase == "read":
                store.read("Observation", body["id"])
            else:
                version = 1 if phase == "create" else 2
                with store.transaction() as txn:
                    txn.put(StoredVersion("Observation", body["id"], version, "2026-11-23T10:00:00.000Z",
                                          "POST" if version == 1 else "PUT", body), index)
                    txn.outbox_append({"kind": "resource", "id": body["id"], "version": version})
            latencies.append(time.perf_counter() - t0)
        figures[phase] = _figures(n, time.perf_counter() - start, latencies)
    store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="Observations per phase")
    parser.add_argument("--clients", type=int, default=4, help="load processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full",
                        help="SQLite synchronous setting of both stores (RELAIS_STORE=...?synchronous=)")
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.system()} {platform.release()}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        proc, port = start_gunicorn(f"sqlite:///{directory / 'relais.db'}?synchronous={args.synchronous}", args.workers)
        try:
            _reference_patients(port)
            http_figures = {}
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                run = functools.partial(_run_phase, pool, proc.pid, port, clients=args.clients)
                http_figures["create"], ids = run("create", list(range(args.n)))
                http_figures["read"], _ = run("read", ids)
                http_figures["update"], _ = run("update", ids)
        finally:
            proc.terminate()
            proc.wait(30)
        base = _baseline(args.n, directory, args.synchronous)
    print(f"\n{args.n} Observations per phase; HTTP: gunicorn -w {args.workers} (sync workers), {args.clients} load "
          "processes, a connection per request; baseline: the store alone, one thread; "
          f"SQLite synchronous={args.synchronous}")
    print(f"{'phase':<8}{'HTTP/s':>10}{'p50 ms':>9}{'p99 ms':>9}   {'store/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
          f"   {'HTTP/store':>10}   {'server CPU ms/op':>16}{'load CPU ms/op':>15}")
    for phase in ("create", "read", "update"):
        h, b = http_figures[phase], base[phase]
        print(f"{phase:<8}{h['per_s']:>10.0f}{h['p50_ms']:>9.2f}{h['p99_ms']:>9.2f}   {b['per_s']:>10.0f}"
              f"{b['p50_ms']:>9.3f}{b['p99_ms']:>9.3f}   {h['per_s'] / b['per_s']:>10.2f}"
              f"   {h['server_cpu_ms']:>16.2f}{h['load_cpu_ms']:>15.2f}")
    targets = {"create": 600, "read": 1500}
    for phase, target in targets.items():
        ok = http_figures[phase]["per_s"] >= target and http_figures[phase]["p99_ms"] < 50
        print(f"target {phase} >= {target}/s and p99 < 50 ms: {'met' if ok else 'NOT met'}")
    print(f"target update p99 < 50 ms: {'met' if http_figures['update']['p99_ms'] < 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
