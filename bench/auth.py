"""Access-control benchmark: token endpoint throughput (private_key_jwt) and the cost of auth on reads.

Starts gunicorn (2 workers, embedded SQLite store) twice on the same store, authentication on and
off, and drives it from separate load processes over keep-alive connections. Client assertions are
signed before the clock starts (that is the client's CPU, not the server's).

    .venv/bin/python bench/auth.py [--tokens 2000] [--reads 5000] [--clients 4]

Targets (issue 5): >= 200 tokens/s with private_key_jwt; read overhead with auth <= 15 %.
"""

from __future__ import annotations

import argparse
import http.client
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
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # kit/: free ports

from kit.ports import free_port  # noqa: E402
from served import start_gunicorn  # noqa: E402

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _start(store_url: str, port: int, auth: bool):
    """gunicorn -w 2 on ``port`` (client assertions name the token URL, port included, before it starts)."""
    proc, _ = start_gunicorn(store_url, 2, {"RELAIS_AUTH": "on" if auth else "off", "RELAIS_SCHEDULER": "off"}, port)
    return proc


def _token_load(args: tuple) -> list[float]:
    port, bodies = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    latencies = []
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    for body in bodies:
        start = time.perf_counter()
        conn.request("POST", "/auth/token", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"token request failed: {response.status}")
        latencies.append(time.perf_counter() - start)
    return latencies


def _read_load(args: tuple) -> list[float]:
    port, ids, token = args
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Accept": "application/fhir+json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies = []
    for rid in ids:
        start = time.perf_counter()
        conn.request("GET", f"/fhir/Observation/{rid}", headers=headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"read failed: {response.status}")
        latencies.append(time.perf_counter() - start)
    return latencies


def _run(pool, fn, port: int, chunks: list, *extra) -> tuple[float, list[float]]:
    start = time.perf_counter()
    results = pool.map(fn, [(port, chunk, *extra) for chunk in chunks])
    elapsed = time.perf_counter() - start
    return elapsed, [x for r in results for x in r]


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full",
                        help="SQLite synchronous level of the store (full: an fsync per durable commit)")
    args = parser.parse_args()

    from joserfc import jwt
    from joserfc.jwk import RSAKey

    from auth.clients import ClientRegistry
    from fhir_server.actor import SERVER
    from fhir_server.store import open_store
    from fhir_server.write import CREATE, UPDATE, Change, write

    tmp = tempfile.mkdtemp(prefix="relais-auth-bench-")
    store_url = f"sqlite:///{tmp}/relais.db?synchronous={args.synchronous}"
    store = open_store(store_url)
    key = RSAKey.generate_key(2048, parameters={"alg": "RS384"}, auto_kid=True)
    client, _ = ClientRegistry(store).add("bench", ["system/*.rs"], jwks={"keys": [key.as_dict(private=False)]})
    patients = [Change(UPDATE, "Patient", id=f"p{k}", resource={"resourceType": "Patient", "id": f"p{k}"})
                for k in range(50)]
    ids = [r.id for r in write(store, patients + [Change(CREATE, "Observation", resource={
        "resourceType": "Observation", "status": "final", "subject": {"reference": f"Patient/p{i % 50}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
        "valueQuantity": {"value": 70 + i % 20, "unit": "kg"}}) for i in range(500)], SERVER)
           if r.resource_type == "Observation"]
    store.close()

    port = free_port()
    token_url = f"http://127.0.0.1:{port}/auth/token"
    now = int(time.time())
    bodies = [
        urlencode({
            "grant_type": "client_credentials", "scope": "system/*.rs", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": jwt.encode({"alg": "RS384", "kid": key.kid}, {
                "iss": client.client_id, "sub": client.client_id, "aud": token_url, "exp": now + 290,
                "jti": uuid.uuid4().hex}, key, algorithms=["RS384"]),
        })
        for _ in range(args.tokens + 1)
    ]
    spare = bodies.pop()  # the token of the read phase
    n = args.clients
    reads = [ids[i % len(ids)] for i in range(args.reads)]
    results = {}
    with multiprocessing.Pool(n) as pool:
        proc = _start(store_url, port, auth=True)
        try:
            _run(pool, _token_load, port, [bodies[i:: n][:5] for i in range(n)])  # warm-up: keys, imports
            elapsed, lat = _run(pool, _token_load, port, [bodies[n * 5 + i:: n] for i in range(n)])
            results["token (private_key_jwt, RS384)"] = (len(lat) / elapsed, _pct(lat, 50), _pct(lat, 99))
            conn = http.client.HTTPConnection("127.0.0.1", port)
            conn.request("POST", "/auth/token", spare, {"Content-Type": "application/x-www-form-urlencoded"})
            token = json.loads(conn.getresponse().read())["access_token"]
        finally:
            proc.terminate()
            proc.wait()
        # reads on a fresh server, as the auth-off run gets: the token phase's thousands of
        # writes otherwise leave a WAL to checkpoint during the first reads
        proc = _start(store_url, port, auth=True)
        try:
            _run(pool, _read_load, port, [reads[:200]] * n, token)  # warm-up
            elapsed, lat = _run(pool, _read_load, port, [reads[i::n] for i in range(n)], token)
            results["read, auth on"] = (len(lat) / elapsed, _pct(lat, 50), _pct(lat, 99))
        finally:
            proc.terminate()
            proc.wait()
        port_off = free_port()
        proc = _start(store_url, port_off, auth=False)
        try:
            _run(pool, _read_load, port_off, [reads[:200]] * n, None)
            elapsed, lat = _run(pool, _read_load, port_off, [reads[i::n] for i in range(n)], None)
            results["read, auth off"] = (len(lat) / elapsed, _pct(lat, 50), _pct(lat, 99))
        finally:
            proc.terminate()
            proc.wait()

    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"gunicorn -w 2, SQLite synchronous={args.synchronous}, {n} load processes")
    print(f"{'what':34} {'per s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, (rate, p50, p99) in results.items():
        print(f"{name:34} {rate:8.0f} {p50:8.2f} {p99:8.2f}")
    on, off = results["read, auth on"][0], results["read, auth off"][0]
    print(f"read overhead of auth (throughput): {100 * (off - on) / off:.1f} %")
    p50_on, p50_off = results["read, auth on"][1], results["read, auth off"][1]
    print(f"read overhead of auth (p50 latency): {100 * (p50_on - p50_off) / p50_off:.1f} %")


if __name__ == "__main__":
    main()
