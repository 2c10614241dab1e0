"""Bulk export benchmark: a system-level $export of 200,000 resources to ndjson.

    .venv/bin/python bench/export.py                       # 200,000 resources (the issue's figure)
    .venv/bin/python bench/export.py --resources 20000     # a quick run
    .venv/bin/python bench/export.py --store mongodb://localhost:27017/relais_bench

The store (embedded SQLite in a temporary directory by default) is filled through the store
interface directly (one Patient and 99 Observations per patient; filling is not what is
measured), then the export runner (the code the scheduler runs) exports every type; then a
Patient-level export, which also filters on the Patient compartment.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fhir_server.export import jobs, runner  # noqa: E402
from fhir_server.store import open_store  # noqa: E402
from fhir_server.store.base import StoredVersion  # noqa: E402
from fhir_server.write import now_instant  # noqa: E402

PER_PATIENT = 100


def fill(store, total: int) -> int:
    """Store ``total`` resources (Patients and their Observations) in transactions of 5,000."""
    stamp = now_instant()
    written = 0
    batch: list[StoredVersion] = []
    while written + len(batch) < total:
        pid = str(uuid.uuid4())
        batch.append(StoredVersion("Patient", pid, 1, stamp, "POST", {
            "resourceType": "Patient", "id": pid, "meta": {"versionId": "1", "lastUpdated": stamp},
            "identifier": [{"system": "urn:bench", "value": pid}], "name": [{"family": "Bench", "given": ["P"]}],
            "gender": "female", "birthDate": "1970-01-01"}))
        for i in range(min(PER_PATIENT - 1, total - written - len(batch))):
            oid = str(uuid.uuid4())
            batch.append(StoredVersion("Observation", oid, 1, stamp, "POST", {
                "resourceType": "Observation", "id": oid, "meta": {"versionId": "1", "lastUpdated": stamp},
                "status": "final", "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": "2026-11-20T08:00:00Z",
                "valueQuantity": {"value": 60 + i % 40, "unit": "kg", "system": "http://unitsofmeasure.org",
                                  "code": "kg"}}))
        if len(batch) >= 5000 or written + len(batch) >= total:
            with store.transaction() as txn:
                for version in batch:
                    txn.put(version, [])
            written += len(batch)
            batch = []
    return written


def timed_export(store, directory: Path, level: str) -> tuple[int, float, float, int]:
    """(resources, wall s, CPU s, bytes) of one export run by the runner."""
    job = jobs.create(store, level=level, group=None, types=["Patient", "Observation"], since=None,
                      request=f"bench {level}", base="http://bench/fhir", owner=None, requires_token=False)
    claimed = jobs.claim(store, "bench", runner.LEASE_S)
    assert claimed is not None and claimed["id"] == job["id"]
    start, cpu = time.perf_counter(), time.process_time()
    runner.run(store, claimed, directory)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    done = jobs.get(store, job["id"])
    assert done is not None and done["status"] == jobs.COMPLETED, done
    size = sum(f.stat().st_size for f in (directory / job["id"]).iterdir())
    return sum(o["count"] for o in done["output"]), wall, cpu, size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=200_000)
    parser.add_argument("--store", help="a store URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(args.store or f"sqlite:///{tmp}/relais.db")
        start = time.perf_counter()
        written = fill(store, args.resources)
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
              f"{platform.python_version()}; store: {type(store).__name__}")
        print(f"filled {written} resources in {time.perf_counter() - start:.1f} s (not measured)")
        for level in ("system", "patient"):
            count, wall, cpu, size = timed_export(store, Path(tmp) / "exports", level)
            print(f"{level} export: {count} resources, {size / 1e6:.0f} MB ndjson in {wall:.1f} s:"
                  f" {count / wall:,.0f} resources/s; CPU {cpu:.1f} s, {count / cpu:,.0f} resources per CPU-second")
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
        store.close()


if __name__ == "__main__":
    main()
