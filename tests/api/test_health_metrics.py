"""GET /health (readiness: the store answers, the outbox is drained in time), /health/live and /metrics."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import requests
from kit.live import serve
from kit.outbox import drain
from kit.ports import free_port
from kit.processes import REPOSITORY, spawn_server, stop_server
from kit.stores import make_store
from prometheus_client.parser import text_string_to_metric_families

from fhir_server.api.health import checks
from fhir_server.outbox.dead_letters import DEAD_LETTERS


def _samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_health_passes_then_fails_when_the_outbox_is_not_drained(tmp_path):
    live = serve(make_store("sqlite", tmp_path), health_max_backlog_s=0.2)
    try:
        r = requests.get(f"{live.origin}/health")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "pass" and r.json()["checks"]["store"]["status"] == "pass"
        assert live.post("Patient", {"resourceType": "Patient"}).status_code == 201  # one event, no dispatcher
        deadline = time.monotonic() + 10
        while (r := requests.get(f"{live.origin}/health")).status_code == 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "fail" and body["failed"] == ["outbox"]
        assert body["checks"]["outbox"]["backlog"] >= 1 and body["checks"]["outbox"]["oldest_unclaimed_age_s"] > 0.2
        drain(live.app)
        assert requests.get(f"{live.origin}/health").status_code == 200
        assert requests.get(f"{live.origin}/health/live").json() == {"status": "pass"}
    finally:
        live.close()


class _Down:
    def outbox_pending(self) -> int:
        raise OSError("disk I/O error")


def test_a_store_that_does_not_answer_fails_the_store_check():
    found = checks(_Down(), 60.0)  # type: ignore[arg-type]
    assert found["store"]["status"] == "fail" and "disk I/O error" in found["store"]["error"]


def test_metrics_count_requests_by_status_and_read_the_outbox(tmp_path):
    store = make_store("sqlite", tmp_path)
    live = serve(store)
    try:
        live.post("Patient", {"resourceType": "Patient"})
        live.get("Patient/nope")
        live.get("Patient/nope")
        store.kv_put(DEAD_LETTERS, "42", {"payload": {}, "attempts": 9, "error": "boom", "at": 0})
        r = requests.get(f"{live.origin}/metrics")
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        samples = _samples(r.text)
        assert samples[("relais_http_requests_total", (("method", "GET"), ("status", "404")))] == 2
        assert samples[("relais_http_requests_total", (("method", "POST"), ("status", "201")))] == 1
        assert samples[("relais_http_request_duration_seconds_count", (("method", "GET"),))] == 2
        assert samples[("relais_outbox_backlog", ())] >= 1
        assert samples[("relais_outbox_dead_letters", ())] == 1
        assert ("relais_outbox_oldest_unclaimed_age_seconds", ()) in samples
    finally:
        live.close()


def test_under_gunicorn_every_worker_reports_the_sum_of_all_workers(tmp_path: Path):
    """prometheus_client's multiprocess mode, set up as the README says: PROMETHEUS_MULTIPROC_DIR."""
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    env = {**os.environ, "RELAIS_STORE": f"sqlite:///{tmp_path / 'relais.db'}", "RELAIS_AUTH": "off",
           "RELAIS_SCHEDULER": "off", "RELAIS_BASE_URL": f"http://127.0.0.1:{port}/fhir",
           "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn), "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning", "app:create_app()"]
    proc = spawn_server(command, env, port, REPOSITORY)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(20):  # a new connection each: the workers share them out
            assert requests.get(f"{base}/fhir/Patient/nope", headers={"Accept": "application/fhir+json"}).status_code \
                == 404
        for _ in range(4):  # whichever worker answers the scrape reports all 20
            samples = _samples(requests.get(f"{base}/metrics").text)
            assert samples[("relais_http_requests_total", (("method", "GET"), ("status", "404")))] == 20
    finally:
        stop_server(proc)
