"""``GET /health`` (readiness), ``GET /health/live`` (liveness) and ``GET /metrics`` (Prometheus text).

Readiness: the store answers, and the dispatchers are not behind (the oldest outbox event no
dispatcher has claimed has waited less than RELAIS_HEALTH_MAX_BACKLOG_S). 200 when both pass, 503
otherwise; the JSON body says which check failed. These paths are outside /fhir: no token, no audit.
"""

from __future__ import annotations

import time

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request

from ..metrics import CONTENT_TYPE, Metrics, backlog_age
from ..store.base import Store

EXTENSION = "relais_metrics"

health = Blueprint("relais_health", __name__)


def checks(store: Store, max_backlog_s: float) -> dict[str, dict]:
    """Each readiness check by name: {"status": "pass" | "fail", ...what it saw}."""
    try:
        backlog = store.outbox_pending()
        age = backlog_age(store)
    except Exception as exc:  # noqa: BLE001 - whatever the backend raises, the store does not answer
        return {"store": {"status": "fail", "error": f"{type(exc).__name__}: {exc}"[:300]}}
    behind = age > max_backlog_s
    return {
        "store": {"status": "pass"},
        "outbox": {"status": "fail" if behind else "pass", "backlog": backlog,
                   "oldest_unclaimed_age_s": round(age, 3), "max_age_s": max_backlog_s},
    }


@health.get("/health")
def ready() -> Response:
    config = current_app.config["RELAIS"]
    found = checks(current_app.extensions["relais_store"], config.health_max_backlog_s)
    failed = [name for name, check in found.items() if check["status"] != "pass"]
    body = {"status": "fail" if failed else "pass", "checks": found}
    if failed:
        body["failed"] = failed
    response = jsonify(body)
    response.status_code = 503 if failed else 200
    response.headers["Cache-Control"] = "no-store"
    return response


@health.get("/health/live")
def live() -> Response:
    """The process answers requests; nothing else is looked at (a store outage is readiness's business)."""
    return jsonify({"status": "pass"})


@health.get("/metrics")
def metrics() -> Response:
    collected: Metrics = current_app.extensions[EXTENSION]
    return Response(collected.exposition(), 200, headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})


def install(app: Flask, store: Store) -> None:
    """Serve /health and /metrics, and time every request of ``app`` for /metrics."""
    collected = Metrics(store)
    app.extensions[EXTENSION] = collected

    @app.before_request
    def _start() -> None:
        g.relais_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("relais_started")
        if started is not None:
            collected.observe(request.method, response.status_code, time.perf_counter() - started)
        return response

    app.register_blueprint(health)
