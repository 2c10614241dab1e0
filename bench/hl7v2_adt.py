"""ADT benchmark (issue 15): what the PAM France segments cost, in process, against hl7apy's parsing alone.

The ANS sample consent-consultation-non-opposition.er7 (PID, PD1, ROL, PV1, PV2, ZBE, ZFA, ZFM, ZFD:
8 resources: Patient, Encounter, 2 Practitioners, CareTeam, 2 Consents) is sent N times with its
control id and IPP changed (N new patients), then N times more for the same patients (updates:
every resource found again and carried over). Measured in the same run: hl7apy parsing alone,
the mapper alone (parse + map), and the whole ingest on a SQLite store (record, map, resolve,
decide, write, ACK), in one process, authentication off.

    .venv/bin/python bench/hl7v2_adt.py [--messages 300]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fhir_server.store import open_store  # noqa: E402
from mappers.hl7v2 import er7, feed, map_message  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "fixtures" / "hl7v2" / "ans-pam-fr" / "consent-consultation-non-opposition.er7"


def _messages(count: int, round_: int) -> list[str]:
    text = SAMPLE.read_text(encoding="utf-8")
    return [text.replace("|3975|", f"|R{round_}-{i}|").replace("000003^^^CHU-X", f"{i:06d}^^^CHU-X")
            .replace("000897406^^^CHU-X&000897406&M^VN", f"V{i:06d}^^^CHU-X&000897406&M^VN") for i in range(count)]


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} messages/s ({seconds * 1000 / count:.2f} ms a message)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    first, second = _messages(args.messages, 1), _messages(args.messages, 2)
    start = time.perf_counter()
    for text in first:
        er7.read(text)
    parsing = time.perf_counter() - start
    start = time.perf_counter()
    for text in first:
        assert map_message(text).code == "AA"
    mapping = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as directory:
        store = open_store(f"sqlite:///{directory}/relais.db")
        source = feed.Source("mllp", "127.0.0.1", None)
        timings = []
        for batch in (first, second):
            start = time.perf_counter()
            for text in batch:
                outcome = feed.receive(store, text.encode(), None, source, "http://127.0.0.1:8080/fhir")
                assert outcome.record["outcome"] == "AA", outcome.record.get("reason")
            timings.append(time.perf_counter() - start)
        store.close()
    n = args.messages
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"hl7apy parsing alone:      {_rate(n, parsing)}")
    print(f"mapper (parse + map):      {_rate(n, mapping)}   ratio to parsing {parsing / mapping:.2f}")
    print(f"ingest, new patients:      {_rate(n, timings[0])}   ratio to parsing {parsing / timings[0]:.2f}")
    print(f"ingest, the same again:    {_rate(n, timings[1])}   ratio to parsing {parsing / timings[1]:.2f}")


if __name__ == "__main__":
    main()
