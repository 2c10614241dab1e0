"""Search benchmark: 200,000 Observations over 2,000 Patients, four queries, HTTP against the store alone.

Loads generated data straight through the store interface (batched transactions, index rows
extracted as on a real write), serves it with gunicorn (2 workers, embedded store), then
measures p50 and p95 of each query from one sequential client, and the same query answered
straight by the store (parse, search, read the page) in the same run, with the ratio.

    .venv/bin/python bench/search.py [--patients 2000] [--per-patient 100] [--runs 200]
"""

from __future__ import annotations

import argparse
import http.client
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl, quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # kit/processes.py: spawn a server that dies with this process

FAMILIES = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
            "Simon", "Laurent", "Lefèbvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier",
            "Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet", "François", "Martínez"]
GIVEN = ["Hélène", "Jean", "Marie", "Pierre", "Françoise", "Michel", "Élodie", "Noël", "Zoé", "Loïc", "Anaïs"]
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
# (code, display, unit, low, high): the measures the telemonitoring feeds send.
VITALS = [("29463-7", "Body weight", "kg", 45, 120), ("8867-4", "Heart rate", "/min", 45, 140),
          ("2339-0", "Glucose", "mg/dL", 60, 300), ("59408-5", "SpO2", "%", 82, 100),
          ("8310-5", "Body temperature", "Cel", 35.5, 40.5)]


def patient(i: int, rng: random.Random) -> dict:
    return {"resourceType": "Patient", "id": f"pat{i}",
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": f"{1000000000000 + i}"}],
            "name": [{"family": rng.choice(FAMILIES), "given": [rng.choice(GIVEN)]}],
            "gender": rng.choice(["female", "male"]),
            "birthDate": f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-1{i % 9}"}


def observation(pid: str, j: int, rng: random.Random) -> dict:
    def mmhg(low: int, high: int) -> dict:
        return {"value": rng.randint(low, high), "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}

    day = f"{2025 + (j % 2)}-{1 + rng.randrange(12):02d}-{1 + rng.randrange(28):02d}T{rng.randrange(24):02d}:00:00Z"
    base = {"resourceType": "Observation", "id": f"{pid}-o{j}", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "vital-signs"}]}],
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": day}
    if j % 6 == 0:  # a blood pressure panel, one in six measures
        return {**base, "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood pressure"}]},
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]}, "valueQuantity": mmhg(95, 210)},
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]}, "valueQuantity": mmhg(55, 120)}]}
    code, display, unit, low, high = rng.choice(VITALS)
    return {**base, "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "valueQuantity": {"value": round(rng.uniform(low, high), 1), "unit": unit, "system": UCUM, "code": unit}}


def load(store, patients: int, per_patient: int, rng: random.Random) -> list[dict]:
    """Write the data set through the store interface, 1,000 resources a transaction."""
    from fhir_server.search.extract import index_values
    from fhir_server.store import StoredVersion

    stamp = "2026-11-20T10:00:00.000Z"
    people, batch = [], []

    def flush() -> None:
        with store.transaction() as txn:
            for resource in batch:
                resource["meta"] = {"versionId": "1", "lastUpdated": stamp}
                txn.put(StoredVersion(resource["resourceType"], resource["id"], 1, stamp, "POST", resource),
                        index_values(resource))
        batch.clear()

    for i in range(patients):
        person = patient(i, rng)
        people.append(person)
        batch.append(person)
        batch.extend(observation(person["id"], j, rng) for j in range(per_patient))
        if len(batch) >= 1000:
            flush()
    if batch:
        flush()
    return people


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return 1000 * statistics.median(ordered), 1000 * ordered[int(0.95 * (len(ordered) - 1))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--patients", type=int, default=2000)
    parser.add_argument("--per-patient", type=int, default=100)
    parser.add_argument("--runs", type=int, default=200, help="timed requests per query")
    args = parser.parse_args()
    from kit.processes import stop_server
    from served import start_gunicorn

    from fhir_server.search.parser import parse
    from fhir_server.store import open_store

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    rng = random.Random(2026)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/relais.db"
        store = open_store(url)
        t0 = time.perf_counter()
        people = load(store, args.patients, args.per_patient, rng)
        total = args.patients * (args.per_patient + 1)
        print(f"loaded {total} resources in {time.perf_counter() - t0:.0f} s")
        store.checkpoint()
        store.optimize()  # what the scheduler's store-optimize job does 30 s after start, then every 10 min

        def query_set(k: int) -> dict[str, str]:
            person = people[k % len(people)]
            return {
                "(a) patient+code+date, sorted": f"Observation?subject=Patient/{person['id']}&code={LOINC}|85354-9"
                                                 "&date=ge2026-01-01&_sort=-date",
                "(b) Patient?name": f"Patient?name={quote(person['name'][0]['family'][:4].lower())}",
                "(c) systolic > 180": f"Observation?component-code-value-quantity={LOINC}|8480-6$gt180",
                "(d) $everything": f"Patient/{person['id']}/$everything",
            }

        proc, port = start_gunicorn(url, 2, {"RELAIS_SCHEDULER": "off"})
        http_times: dict[str, list[float]] = {}
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for k in range(args.runs + 10):
                for name, path in query_set(k).items():
                    start = time.perf_counter()
                    conn.request("GET", f"/fhir/{path}", headers={"Accept": "application/fhir+json"})
                    response = conn.getresponse()
                    body = response.read()
                    if response.status != 200:
                        raise SystemExit(f"{path}: {response.status} {body[:300]!r}")
                    if k >= 10:  # the first rounds warm caches and connections
                        http_times.setdefault(name, []).append(time.perf_counter() - start)
        finally:
            stop_server(proc)

        from fhir_server.compartment import params as compartment_params
        from fhir_server.resources import SUPPORTED_TYPES
        from fhir_server.search.query import Predicate, SearchQuery

        def direct(path: str) -> None:
            """The store's share of a query: parse, search, read the page (no HTTP, no Bundle)."""
            if path.endswith("$everything"):
                pid = path.split("/")[1]
                store.read("Patient", pid)
                for rtype in SUPPORTED_TYPES:
                    for param in compartment_params(rtype):
                        pred = Predicate(param, "reference", "eq", ("Patient", pid, None))
                        ids = store.search(SearchQuery(rtype, ((pred,),), count=1000, total="none")).ids
                        store.read_many(rtype, ids)
                return
            rtype, _, qs = path.partition("?")
            query = parse(rtype, parse_qsl(qs))
            store.read_many(rtype, store.search(query).ids)

        store_times: dict[str, list[float]] = {}
        for k in range(args.runs + 10):
            for name, path in query_set(k).items():
                start = time.perf_counter()
                direct(path)
                if k >= 10:
                    store_times.setdefault(name, []).append(time.perf_counter() - start)
        store.close()

    print(f"\n{total} resources ({args.patients} Patients x {args.per_patient} Observations), {args.runs} runs a "
          "query, one sequential client; HTTP: gunicorn -w 2 on the embedded store; store: parse+search+read")
    print(f"{'query':<32}{'HTTP p50':>10}{'p95':>8}   {'store p50':>10}{'p95':>8}   {'HTTP/store p50':>15}")
    for name in http_times:
        hp50, hp95 = percentiles(http_times[name])
        sp50, sp95 = percentiles(store_times[name])
        print(f"{name:<32}{hp50:>10.2f}{hp95:>8.2f}   {sp50:>10.2f}{sp95:>8.2f}   {hp50 / sp50:>15.1f}")
    a50, _ = percentiles(http_times["(a) patient+code+date, sorted"])
    worst95 = max(percentiles(t)[1] for t in http_times.values())
    print(f"target (a) p50 < 10 ms: {'met' if a50 < 10 else 'NOT met'} ({a50:.2f} ms); "
          f"every query p95 < 100 ms: {'met' if worst95 < 100 else 'NOT met'} (worst {worst95:.2f} ms)")


if __name__ == "__main__":
    main()
