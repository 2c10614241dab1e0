"""Prometheus metrics of one app: requests by status, their latency, and the outbox seen from the store.

prometheus_client keeps the counters and writes the text format. Each app has its own registry (a
test process builds many apps). Under gunicorn each worker counts its own requests: set
``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, before the workers start) and every worker's
``/metrics`` reports the sum over all workers, through prometheus_client's multiprocess mode. The
outbox figures are read from the store at each scrape, so they are the same whichever worker answers.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from .outbox import dead_letters
from .store.base import Store

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
# A label per method a client may invent would grow the series without bound.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def backlog_age(store: Store, now: float | None = None) -> float:
    """Seconds the oldest event that no dispatcher has claimed yet has waited (0: none waits)."""
    oldest = store.outbox_oldest_unclaimed()
    return 0.0 if oldest is None else max(0.0, (now or time.time()) - oldest)


class OutboxCollector(Collector):
    """The outbox as the store sees it at scrape time (all processes): backlog, its age, dead letters."""

    def __init__(self, store: Store):
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("relais_outbox_backlog", "Events waiting in the outbox (claimed ones included)",
                                value=self.store.outbox_pending())
        yield GaugeMetricFamily("relais_outbox_oldest_unclaimed_age_seconds",
                                "How long the oldest event no dispatcher has claimed yet has waited",
                                value=backlog_age(self.store))
        yield GaugeMetricFamily("relais_outbox_dead_letters", "Events that kept failing (relais outbox)",
                                value=len(dead_letters.listed(self.store)))


class Metrics:
    """One app's metrics: ``observe`` each answered request, ``exposition`` for /metrics."""

    def __init__(self, store: Store):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("relais_http_requests", "HTTP requests answered, by method and status",
                                ["method", "status"], registry=self.registry)
        self.latency = Histogram("relais_http_request_duration_seconds", "Time to answer an HTTP request",
                                 ["method"], registry=self.registry)
        self.outbox = OutboxCollector(store)
        self.registry.register(self.outbox)

    def observe(self, method: str, status: int, seconds: float) -> None:
        method = method if method in _METHODS else "other"
        self.requests.labels(method, str(status)).inc()
        self.latency.labels(method).observe(seconds)

    def exposition(self) -> bytes:
        """The text format: this process's counters, or every worker's under multiprocess mode."""
        if not os.environ.get(MULTIPROCESS_VARIABLE):
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.outbox)
        return generate_latest(registry)
