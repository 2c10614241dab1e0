"""GET /health (readiness: the store answers, the outbox is drained in time), /health/live and /metrics."""

from __future__ import annotations

import time

import requests
from kit.live import serve
from kit.outbox import drain
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
