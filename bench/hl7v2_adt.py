"""ADT benchmark (issue 15): what the PAM France segments cost, in process, against hl7apy's parsing alone.

The ANS sample consent-consultation-non-opposition.er7 (PID, PD1, ROL, PV1, PV2, ZBE, ZFA, ZFM, ZFD:
8 resources: Patient, Encounter, 2 Practitioners, CareTeam, 2 Consents) is sent N times with its
control id and IPP changed (N new patients), then N times more for the same patients (updates:
every resource found again and carried over). Measured in the same run, in interleaved rounds (the
best of each kept: a loaded machine only adds time): hl7apy parsing alone, the mapper alone (parse
+ map), and the whole ingest on a SQLite store (record, map, resolve, decide, write, ACK), in one
process, authentication off.

    .venv/bin/python bench/hl7v2_adt.py [--messages 50] [--rounds 5]
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


def _messages(count: int, round_: int, same_as: int | None = None) -> list[str]:
    """``count`` copies of the sample: new patients and visits for ``round_``, control ids unique."""
    text = SAMPLE.read_text(encoding="utf-8")
    who = round_ if same_as is None else same_as
    return [text.replace("|3975|", f"|R{round_}-{i}|").replace("000003^^^CHU-X", f"{who:03d}{i:04d}^^^CHU-X")
            .replace("000897406^^^CHU-X&000897406&M^VN", f"V{who:03d}{i:04d}^^^CHU-X&000897406&M^VN")
            for i in range(count)]


def _timed(step, batch: list[str]) -> float:
    start = time.perf_counter()
    for text in batch:
        step(text)
    return time.perf_counter() - start


def _rate(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f} messages/s ({seconds * 1000 / count:.1f} ms a message)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=50, help="messages a round and a measure")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, interleaved; the best of each measure is kept")
    args = parser.parse_args()
    best: dict[str, float] = {}
    source = feed.Source("mllp", "127.0.0.1", None)

    def ingest(store):
        def step(text: str) -> None:
            outcome = feed.receive(store, text.encode(), None, source, "http://127.0.0.1:8080/fhir")
            assert outcome.record["outcome"] == "AA", outcome.record.get("reason")
        return step

    def mapped(text: str) -> None:
        assert map_message(text).code == "AA"

    with tempfile.TemporaryDirectory() as directory:
        store = open_store(f"sqlite:///{directory}/relais.db")
        for round_ in range(args.rounds):
            new, again = _messages(args.messages, 2 * round_), _messages(args.messages, 2 * round_ + 1, 2 * round_)
            for name, step, batch in (("parsing", er7.read, new), ("mapper", mapped, new),
                                      ("ingest-new", ingest(store), new), ("ingest-again", ingest(store), again)):
                elapsed = _timed(step, batch)
                best[name] = min(best.get(name, elapsed), elapsed)
        store.close()
    n = args.messages
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}; best of {args.rounds} rounds of {n} messages")
    print(f"hl7apy parsing alone:      {_rate(n, best['parsing'])}")
    for name, label in (("mapper", "mapper (parse + map):   "), ("ingest-new", "ingest, new patients:   "),
                        ("ingest-again", "ingest, the same again:")):
        print(f"{label}   {_rate(n, best[name])}   ratio to parsing {best['parsing'] / best[name]:.2f}")


if __name__ == "__main__":
    main()
