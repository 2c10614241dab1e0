"""Ingest benchmark: Synthea transaction Bundles POSTed to the server, against validation alone.

    .venv/bin/python bench/ingest.py                      # >= 100,000 resources (the issue's figure)
    .venv/bin/python bench/ingest.py --resources 10000    # a quick run

Re-identified copies of the Synthea patients in ../shared/fixtures/synthea (every urn:uuid and
Synthea id replaced by a fresh one per copy) are POSTed as transactions over HTTP, a connection
per request from several load processes, to gunicorn (2 workers, scheduler on: the outbox and the
audit trail are drained as in production) on an embedded SQLite store in a temporary directory.
The server's CPU time, background work included, is read from /proc. The same resources are then
validated alone with fhir.resources in one process, and the ratio printed.
Entries whose type this server does not serve are left out (--all-types keeps them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # kit/: server processes

from kit.processes import stop_server  # noqa: E402
from served import await_idle, cpu_seconds, exchange, start_gunicorn  # noqa: E402

from fhir_server.resources import is_supported, validate  # noqa: E402

SHARED = Path(os.environ.get("RELAIS_SHARED", Path(__file__).resolve().parents[2] / "shared"))
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def templates(all_types: bool) -> list[str]:
    """The Synthea patient Bundles as JSON text, filtered to the served types."""
    found = []
    for path in sorted((SHARED / "fixtures" / "synthea").glob("*.json")):
        bundle = json.loads(path.read_text())
        if bundle.get("type") != "transaction" or not any(
            e["resource"]["resourceType"] == "Patient" for e in bundle["entry"]
        ):
            continue  # the practitioners file would be copied with the same NPIs: patients only
        if not all_types:
            bundle["entry"] = [e for e in bundle["entry"] if is_supported(e["resource"]["resourceType"])]
        found.append(json.dumps(bundle))
    if not found:
        raise SystemExit(f"no Synthea patient bundles under {SHARED / 'fixtures' / 'synthea'}")
    return found


def reidentified(text: str) -> dict:
    """A copy of a Bundle where every UUID (fullUrls, ids, identifiers) is a new one."""
    mapping: dict[str, str] = {}
    return json.loads(_UUID.sub(lambda m: mapping.setdefault(m.group(0), str(uuid.uuid4())), text))


def _post(args: tuple) -> tuple[int, float]:
    """One load process: re-identify and POST its share of the templates; (resources sent, CPU used)."""
    port, texts = args
    cpu, sent = time.process_time(), 0
    headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    for text in texts:
        bundle = reidentified(text)
        status, data = exchange(port, "POST", "/fhir", json.dumps(bundle).encode(), headers)
        if status != 200:
            raise RuntimeError(f"transaction failed: {status} {data[:500]!r}")
        sent += len(bundle["entry"])
    return sent, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=100_000, help="at least this many resources (100000)")
    parser.add_argument("--clients", type=int, default=4, help="load processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--all-types", action="store_true", help="keep entries of types this server does not serve")
    args = parser.parse_args()

    sources = templates(args.all_types)
    sizes = [len(json.loads(text)["entry"]) for text in sources]
    plan, total = [], 0
    while total < args.resources:
        plan.append(sources[len(plan) % len(sources)])
        total += sizes[(len(plan) - 1) % len(sources)]

    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_gunicorn(f"sqlite:///{tmp}/relais.db", args.workers)
        try:
            # One Bundle before the clock in each worker: first use loads the search registry and UCUM tables.
            with multiprocessing.get_context("spawn").Pool(args.clients) as pool:
                pool.map(_post, [(port, [sources[0]]) for _ in range(args.workers)])
                await_idle(proc.pid)
                cpu = cpu_seconds(proc.pid)
                start = time.perf_counter()
                shares = pool.map(_post, [(port, plan[k :: args.clients]) for k in range(args.clients)])
                ingest_s = time.perf_counter() - start
                await_idle(proc.pid)
                server_cpu = cpu_seconds(proc.pid) - cpu
        finally:
            stop_server(proc)
    sent = sum(n for n, _ in shares)
    load_cpu = sum(c for _, c in shares)

    resources = [e["resource"] for text in plan for e in reidentified(text)["entry"]]
    start, cpu = time.perf_counter(), time.process_time()
    for resource in resources:
        validate(resource)
    validate_s, validate_cpu = time.perf_counter() - start, time.process_time() - cpu

    ingest_rate = sent / ingest_s
    validate_rate = len(resources) / validate_s
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"bundles: {len(plan)} transactions, {sent} resources; gunicorn -w {args.workers}, {args.clients} load "
          "processes, a connection per request, SQLite synchronous=full")
    print(f"ingest: {ingest_s:.1f} s, {ingest_rate:,.0f} resources/s (POST /fhir);"
          f" server CPU {1e6 * server_cpu / sent:,.0f} us a resource (audit trail and outbox included),"
          f" load CPU {1e6 * load_cpu / sent:,.0f} us a resource")
    print(f"validation alone: {validate_s:.1f} s, {validate_rate:,.0f} resources/s (fhir.resources R4B, one process);"
          f" CPU {validate_cpu:.1f} s, {len(resources) / validate_cpu:,.0f} resources per CPU-second")
    print(f"ratio ingest / validation: {ingest_rate / validate_rate:.2f}")
    print("targets: >= 1,500 resources/s and ratio >= 0.4: "
          + ("met" if ingest_rate >= 1500 and ingest_rate / validate_rate >= 0.4 else "NOT met"))
    # Other processes on the machine slow the wall clock: the load tells whether to trust it.
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
