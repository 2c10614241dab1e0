"""Pre-DMP benchmark: building a patient's draft (``POST Patient/[id]/$pre-dmp``) against reading the same
patient's compartment (``GET Patient/[id]/$everything``) on the same served app, rounds interleaved; and
making plus checking the ITI-65 Bundle of a validated document, in process.

    .venv/bin/python bench/predmp.py [--observations 1000] [--rounds 7]

The patient has ``--observations`` vital signs over 20 codes, 20 conditions, 20 treatments, 50 alerts and
50 complaints: a long-followed chronic patient. The store is SQLite, authentication off.
"""

from __future__ import annotations

import argparse
import base64
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from kit.live import serve  # noqa: E402
from kit.stores import make_store  # noqa: E402

from fhir_server import write as w  # noqa: E402
from fhir_server.actor import SERVER  # noqa: E402
from fhir_server.fhirjson import loads  # noqa: E402
from predmp.document import validated  # noqa: E402
from predmp.drafts import content_bytes  # noqa: E402
from predmp.mhd import provide_bundle  # noqa: E402
from predmp.pdsm import bundle_issues  # noqa: E402
from tests.predmp import records  # noqa: E402


def seed(store, observations: int) -> None:
    resources = records.known_patient()
    for i in range(observations):
        code = f"bench-{i % 20}"
        obs = records.weight(f"o{i}", 60 + i % 17, records.days_ago(observations - i))
        obs["code"] = {"coding": [{"system": "http://loinc.org", "code": code, "display": f"Mesure {i % 20}"}]}
        resources.append(obs)
    for i in range(20):
        resources.append({**records.condition(), "id": f"c{i}", "code": {"text": f"Problème {i}"}})
        resources.append({**records.medication(), "id": f"m{i}"})
    for i in range(50):
        resources.append({**records.alert(records.days_ago(i / 2)), "id": f"t{i}"})
        resources.append({**records.complaint(records.days_ago(i / 2)), "id": f"com{i}"})
    changes = [w.Change(w.UPDATE, r["resourceType"], id=r["id"], resource=r) for r in resources]
    for start in range(0, len(changes), 200):
        w.write(store, changes[start:start + 200], SERVER)


def timed(call) -> float:
    start = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - start
    assert response.status_code in (200, 201), response.text[:300]
    return elapsed * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--observations", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        store = make_store("sqlite", Path(directory))
        seed(store, args.observations)
        live = serve(store)
        try:
            timed(lambda: live.post("Patient/p1/$pre-dmp"))  # warm-up: first use registers relais-predmp
            timed(lambda: live.get("Patient/p1/$everything?_count=1000"))
            build, everything = [], []
            for _ in range(args.rounds):
                build.append(timed(lambda: live.post("Patient/p1/$pre-dmp")))
                everything.append(timed(lambda: live.get("Patient/p1/$everything?_count=1000")))
            docref = live.post("Patient/p1/$pre-dmp").json()
            binary = live.get(docref["content"][0]["attachment"]["url"]).json()
            document = loads(base64.b64decode(binary["data"]))
            final = validated(document, records.practitioner(), live.base, records.days_ago(0))
            data = content_bytes(final)
            local = {**docref, "docStatus": "final"}
            mhd = []
            for _ in range(args.rounds):
                start = time.perf_counter()
                bundle = provide_bundle(local, data, records.patient(), records.practitioner(), "1.2.250.1.999.1",
                                        records.days_ago(0))
                assert bundle_issues(bundle) == []
                mhd.append((time.perf_counter() - start) * 1000)
        finally:
            live.close()
            store.close()
    print(f"machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"patient: {args.observations} vital signs (20 codes), 20 conditions, 20 treatments, 50 alerts, "
          f"50 complaints; document {len(data):,} bytes, {len(document['entry'])} entries")
    b, e, m = statistics.median(build), statistics.median(everything), statistics.median(mhd)
    print(f"$pre-dmp build (gather, document, store as relais-predmp): median {b:.1f} ms "
          f"(min {min(build):.1f}, max {max(build):.1f})")
    print(f"$everything, same patient (baseline):                    median {e:.1f} ms "
          f"(min {min(everything):.1f}, max {max(everything):.1f})")
    print(f"ratio build / $everything: {b / e:.2f}")
    print(f"ITI-65 Bundle made and checked against PDSm, in process: median {m:.2f} ms")


if __name__ == "__main__":
    main()
