"""Ingest benchmark: Synthea transaction Bundles through POST /fhir, against validation alone.

    .venv/bin/python bench/ingest.py                      # >= 100,000 resources (the issue's figure)
    .venv/bin/python bench/ingest.py --resources 10000    # a quick run

Re-identified copies of the Synthea patients in ../shared/fixtures/synthea (every urn:uuid and
Synthea id replaced by a fresh one per copy) are POSTed as transactions to the real app (Flask
test client: the whole request path, no socket) on an embedded SQLite store in a temporary
directory. The same resources are then validated alone with fhir.resources, and the ratio printed.
Entries whose type this server does not serve are left out (--all-types keeps them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import create_app  # noqa: E402
from fhir_server.config import load_config  # noqa: E402
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=100_000, help="at least this many resources (100000)")
    parser.add_argument("--all-types", action="store_true", help="keep entries of types this server does not serve")
    args = parser.parse_args()

    sources = templates(args.all_types)
    bundles, total = [], 0
    while total < args.resources:
        bundle = reidentified(sources[len(bundles) % len(sources)])
        bundles.append(bundle)
        total += len(bundle["entry"])
    bodies = [json.dumps(b).encode() for b in bundles]

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(environ={}, store=f"sqlite:///{tmp}/relais.db", auth=False, scheduler=False,
                             max_body_bytes=64 * 1024 * 1024)
        app = create_app(config)
        client = app.test_client()
        headers = {"Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
        # One Bundle before the clock: first use loads the search registry and the UCUM tables.
        client.post("/fhir", data=json.dumps(reidentified(sources[0])), headers=headers)
        start, cpu = time.perf_counter(), time.process_time()
        for body in bodies:
            response = client.post("/fhir", data=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"transaction failed: {response.status_code} {response.get_data(as_text=True)[:500]}")
        ingest_s, ingest_cpu = time.perf_counter() - start, time.process_time() - cpu
        stored = app.extensions["relais_store"].stats()["resources"] - len(json.loads(sources[0])["entry"])
        app.extensions["relais_store"].close()

    resources = [e["resource"] for b in bundles for e in b["entry"]]
    start, cpu = time.perf_counter(), time.process_time()
    for resource in resources:
        validate(resource)
    validate_s, validate_cpu = time.perf_counter() - start, time.process_time() - cpu

    ingest_rate = total / ingest_s
    validate_rate = len(resources) / validate_s
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}")
    print(f"bundles: {len(bundles)} transactions, {total} resources ({stored} stored)")
    print(f"ingest: {ingest_s:.1f} s, {ingest_rate:,.0f} resources/s (POST /fhir, SQLite);"
          f" CPU {ingest_cpu:.1f} s, {total / ingest_cpu:,.0f} resources per CPU-second")
    print(f"validation alone: {validate_s:.1f} s, {validate_rate:,.0f} resources/s (fhir.resources R4B);"
          f" CPU {validate_cpu:.1f} s, {len(resources) / validate_cpu:,.0f} resources per CPU-second")
    print(f"ratio ingest / validation: {ingest_rate / validate_rate:.2f} (wall clock),"
          f" {validate_cpu / ingest_cpu:.2f} (CPU time)")
    # Other processes on the machine slow the wall clock, not the CPU time: the load tells which to trust.
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
