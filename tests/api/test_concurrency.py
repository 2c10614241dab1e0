"""Concurrent updates of one resource, from several threads and processes, against several server
processes on one store: no version is lost or duplicated, and If-Match makes increments exact."""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from kit.ports import free_port
from kit.processes import spawn_server, stop_server

from fhir_server.actor import SERVER
from fhir_server.store import open_store
from fhir_server.write import UPDATE, Change, write

COUNTER_URL = "http://relais.example/counter"
HEADERS = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def _counter(resource: dict) -> int:
    return next(e["valueInteger"] for e in resource.get("extension", []) if e["url"] == COUNTER_URL)


def _with_counter(resource: dict, value: int) -> dict:
    others = [e for e in resource.get("extension", []) if e["url"] != COUNTER_URL]
    return {**resource, "extension": [*others, {"url": COUNTER_URL, "valueInteger": value}]}


def _increment(base: str, rid: str, times: int) -> int:
    """Read-modify-write with If-Match until ``times`` increments succeeded; returns the 412s met."""
    conflicts = 0
    with requests.Session() as http:
        done = 0
        while done < times:
            current = http.get(f"{base}/Patient/{rid}", headers=HEADERS)
            current.raise_for_status()
            body = _with_counter(current.json(), _counter(current.json()) + 1)
            r = http.put(f"{base}/Patient/{rid}", json=body, headers={**HEADERS, "If-Match": current.headers["ETag"]})
            if r.status_code == 412:
                conflicts += 1
                continue
            assert r.status_code == 200, r.text
            done += 1
    return conflicts


def _client_process(base: str, rid: str, threads: int, times: int) -> int:
    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(lambda _: _increment(base, rid, times), range(threads)))


@pytest.fixture
def gunicorn_server(tmp_path: Path):
    """`gunicorn -w 3 'app:create_app()'` on an embedded store, as the README documents it."""
    port = free_port()
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir"}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-w", "3", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"]
    proc = spawn_server(command, env, port, Path(__file__).resolve().parents[2])
    yield f"http://127.0.0.1:{port}/fhir", tmp_path / "relais.db"
    stop_server(proc)


def _assert_contiguous_history(base: str, rid: str, expected_versions: int) -> None:
    versions = []
    url = f"{base}/Patient/{rid}/_history?_count=1000"
    while url:
        page = requests.get(url, headers=HEADERS).json()
        versions += [int(e["response"]["etag"].strip('W/"')) for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert sorted(versions) == list(range(1, expected_versions + 1)), "a version was lost or duplicated"


def test_if_match_increments_from_processes_and_threads_are_exact(gunicorn_server):
    base, _ = gunicorn_server
    created = requests.post(f"{base}/Patient", json=_with_counter({"resourceType": "Patient"}, 0), headers=HEADERS)
    rid = created.json()["id"]
    processes, threads, times = 2, 4, 15
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        conflicts = sum(pool.starmap(_client_process, [(base, rid, threads, times)] * processes))
    total = processes * threads * times
    final = requests.get(f"{base}/Patient/{rid}", headers=HEADERS).json()
    assert _counter(final) == total
    assert final["meta"]["versionId"] == str(total + 1)
    assert conflicts > 0, "the workload did not actually race"
    _assert_contiguous_history(base, rid, total + 1)


def test_blind_concurrent_updates_never_lose_a_version(gunicorn_server):
    base, _ = gunicorn_server
    rid = "blind-target"
    puts = 120

    def put(i: int) -> int:
        body = {"resourceType": "Patient", "id": rid, "gender": ["male", "female"][i % 2]}
        return requests.put(f"{base}/Patient/{rid}", json=body, headers=HEADERS).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(put, range(puts)))
    assert statuses.count(201) == 1 and statuses.count(200) == puts - 1
    _assert_contiguous_history(base, rid, puts)


def _direct_writes(url: str, rid: str, n: int) -> None:
    store = open_store(url)
    for _ in range(n):
        write(store, [Change(UPDATE, "Patient", id=rid, resource={"resourceType": "Patient", "id": rid})], SERVER)
    store.close()


def test_writer_processes_on_one_sqlite_file_share_versions_and_the_outbox(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_direct_writes, args=(url, "p", 50)) for _ in range(3)]
    for p in procs:
        p.start()
    threads = [threading.Thread(target=_direct_writes, args=(url, "p", 50)) for _ in range(2)]
    for t in threads:
        t.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for t in threads:
        t.join(120)
    store = open_store(url)
    page = store.history("Patient", "p", count=1000)
    assert sorted(e.version for e in page.entries) == list(range(1, 251))
    assert store.outbox_pending() == 250  # one event per version, none lost
    store.close()
