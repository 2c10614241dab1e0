"""HL7 v2 benchmark: ORU^R01 (5 OBX each) from four MLLP senders, end to end, against hl7apy parsing alone.

Starts gunicorn (2 workers, embedded SQLite store, authentication off) with the MLLP listener on, then
four sender processes, each on one connection, send their messages one at a time and wait for each ACK
(an ACK is sent after the message is stored). In the same run, this process parses the same messages
with hl7apy alone (tolerant, as the feed reads them).

    .venv/bin/python bench/hl7v2.py [--messages 400] [--senders 4] [--profile]

Target (issue 15): end to end >= 0.5 x parsing alone. ``--profile`` profiles the ingest in process.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from kit.ports import free_port  # noqa: E402
from served import await_idle, cpu_seconds, start_gunicorn  # noqa: E402

START, END = b"\x0b", b"\x1c\x0d"
_LOINC = [("2345-7", "Glucose", "mmol/L", "3.9-6.1", "5.4"), ("2160-0", "Creatinine", "umol/L", "45-90", "72.40"),
          ("2951-2", "Sodium", "mmol/L", "135-145", "140"), ("2823-3", "Potassium", "mmol/L", "3.5-5.0", "4.20"),
          ("718-7", "Hemoglobin", "g/dL", "12.0-16.0", "13.1")]


def oru(sender: int, number: int) -> bytes:
    """An ORU^R01 of one lab: a patient per 10 messages, one OBR, five numeric OBX."""
    control = f"B{sender}-{number}"
    patient = f"P{sender}-{number // 10}"
    lines = [
        f"MSH|^~\\&|LABSYS|LAB-{sender}|RELAIS|HUB|20261120081500+0100||ORU^R01^ORU_R01|{control}|P|2.5",
        f"PID|1||{patient}^^^LAB-{sender}&1.2.250.1.999.{sender}&ISO^PI||MARTIN^HELENE^^^^^L||19550412|F",
        f"OBR|1|ORD{control}^LABSYS|FIL{control}^LAB-{sender}|24331-1^Lipid panel^LN|||20261120075500+0100",
    ]
    for index, (code, name, unit, ranges, result) in enumerate(_LOINC, 1):
        lines.append(f"OBX|{index}|NM|{code}^{name}^LN||{result}|{unit}^{unit}^UCUM|{ranges}|N|||F|||"
                     "20261120080000+0100")
    return "\r".join(lines).encode()


def _send(args: tuple) -> tuple[int, int, float]:
    """One sender: its messages on one MLLP connection, each ACK awaited; (sent, AA, seconds)."""
    port, sender, count = args
    messages = [oru(sender, n) for n in range(count)]
    sock = socket.create_connection(("127.0.0.1", port), timeout=120)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    accepted = 0
    pending = b""
    start = time.perf_counter()
    for message in messages:
        sock.sendall(START + message + END)
        while END not in pending:
            chunk = sock.recv(65536)
            if not chunk:
                raise SystemExit("the listener closed the connection")
            pending += chunk
        ack, _, pending = pending.partition(END)
        accepted += b"MSA|AA|" in ack
    elapsed = time.perf_counter() - start
    sock.close()
    return count, accepted, elapsed


def _worker_cpu(pid: int) -> dict[int, float]:
    """CPU seconds of each of gunicorn's workers."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
        found[int(child)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def parse_alone(messages: list[bytes], rounds: int = 1) -> float:
    """hl7apy's reading of ``messages`` as the feed does it (tolerant, no groups): messages/s, one core."""
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    texts = [m.decode() for m in messages]
    start = time.perf_counter()
    for _ in range(rounds):
        for text in texts:
            parse_message(text, validation_level=VALIDATION_LEVEL.TOLERANT, find_groups=False)
    return rounds * len(texts) / (time.perf_counter() - start)


def profile(count: int) -> None:
    """cProfile of the ingest in this process (SQLite, authentication off): where a message's time goes."""
    import cProfile
    import pstats

    from fhir_server.store import open_store
    from mappers.hl7v2 import feed

    store = open_store(f"sqlite:///{tempfile.mkdtemp()}/profile.db")
    source = feed.Source("mllp", "127.0.0.1", None)
    messages = [oru(9, n) for n in range(count)]
    for message in messages[:20]:
        feed.receive(store, message, None, source, "http://127.0.0.1/fhir")
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    for message in messages[20:]:
        feed.receive(store, message, None, source, "http://127.0.0.1/fhir")
    profiler.disable()
    elapsed = time.perf_counter() - start
    print(f"in process, profiled: {(count - 20) / elapsed:.0f} messages/s")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="messages per sender")
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--profile", action="store_true", help="profile the ingest in process instead")
    args = parser.parse_args()
    if args.profile:
        profile(args.messages)
        return
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    directory = tempfile.mkdtemp(prefix="relais-bench-hl7v2-")
    mllp_port = free_port()
    server, _ = start_gunicorn(f"sqlite:///{directory}/relais.db", 2,
                               {"RELAIS_MLLP_PORT": str(mllp_port), "RELAIS_SCHEDULER": "on"})
    messages = [oru(s, n) for s in range(args.senders) for n in range(args.messages)]
    parsing_before = parse_alone(messages)  # before and after the end-to-end run: the machine's load moves
    try:
        # warm up: each worker reads hl7apy's version libraries on its first message
        with multiprocessing.Pool(args.senders) as pool:
            pool.map(_send, [(mllp_port, 100 + s, 5) for s in range(args.senders)])
        await_idle(server.pid)
        cpu_before = cpu_seconds(server.pid)
        workers_before = _worker_cpu(server.pid)
        start = time.perf_counter()
        with multiprocessing.Pool(args.senders) as pool:
            results = pool.map(_send, [(mllp_port, s, args.messages) for s in range(args.senders)])
        wall = time.perf_counter() - start
        await_idle(server.pid)  # the audit trail the outbox writes afterwards is part of the cost
        server_cpu = cpu_seconds(server.pid) - cpu_before
        workers = {pid: cpu - workers_before.get(pid, 0.0) for pid, cpu in _worker_cpu(server.pid).items()}
    finally:
        server.terminate()
        server.wait(30)
    sent = sum(r[0] for r in results)
    accepted = sum(r[1] for r in results)
    end_to_end = sent / wall
    parsing_after = parse_alone(messages)
    parsing = (parsing_before + parsing_after) / 2
    print(f"{args.senders} MLLP senders, {sent} ORU^R01 (5 OBX each), {accepted} AA")
    print(f"end to end (ACK after storage): {wall:.1f} s, {end_to_end:.0f} messages/s"
          f" ({end_to_end / args.senders:.0f} a connection); server CPU {1000 * server_cpu / sent:.1f} ms a message"
          " (outbox and audit included)")
    print("server CPU by worker: " + ", ".join(f"{cpu:.1f} s" for cpu in sorted(workers.values(), reverse=True))
          + " (the kernel spreads MLLP connections among the workers' listeners)")
    print(f"hl7apy parsing alone, same messages, one core: {parsing:.0f} messages/s"
          f" ({parsing_before:.0f} before, {parsing_after:.0f} after)")
    print(f"ratio end to end / parsing alone: {end_to_end / parsing:.2f} (target >= 0.5)")


if __name__ == "__main__":
    main()
