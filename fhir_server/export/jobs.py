"""Bulk export jobs: their state in the store's keyed tables, so that a restart loses none.

A job is claimed with ``kv_insert`` of (job, attempt): of several processes, one only wins an
attempt. The winner holds a lease it renews while it runs; a job 'in-progress' whose lease has
expired (its process died) is claimed again by the next process, and run again from the start.
Cancellation is a key of its own, so a runner saving its progress can never overwrite it.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from ..store.base import Store
from ..write import now_instant

JOBS = "export-jobs"
CLAIMS = "export-claims"
CANCELLED = "export-cancelled"

ACCEPTED, RUNNING, COMPLETED, FAILED = "accepted", "in-progress", "completed", "failed"


@dataclass(frozen=True)
class Tables:
    """Where one kind of background job keeps its records, its claims and its cancellations ($reindex reuses these)."""

    jobs: str
    claims: str
    cancelled: str


EXPORT = Tables(JOBS, CLAIMS, CANCELLED)


def create(store: Store, tables: Tables = EXPORT, **fields: Any) -> dict:
    """Record a new job (status accepted) and return it; ``fields`` describe the request."""
    job = {
        "id": str(uuid.uuid4()),
        "status": ACCEPTED,
        "transaction_time": now_instant(),
        "created": time.time(),
        "attempt": 0,
        "lease_until": 0.0,
        "worker": None,
        "exported": 0,
        "output": [],
        "error": [],
        **fields,
    }
    store.kv_put(tables.jobs, job["id"], job)
    return job


def get(store: Store, job_id: str, tables: Tables = EXPORT) -> dict | None:
    return store.kv_get(tables.jobs, job_id)


def save(store: Store, job: dict, tables: Tables = EXPORT) -> None:
    store.kv_put(tables.jobs, job["id"], job)


def cancel(store: Store, job_id: str, tables: Tables = EXPORT) -> bool:
    """Mark a job cancelled; False if it was already."""
    return store.kv_insert(tables.cancelled, job_id, {"at": now_instant()})


def is_cancelled(store: Store, job_id: str, tables: Tables = EXPORT) -> bool:
    return store.kv_get(tables.cancelled, job_id) is not None


def claimable(job: dict, now: float) -> bool:
    """Accepted and never run, or in progress under a lease that has expired (its process died)."""
    return job["status"] == ACCEPTED or (job["status"] == RUNNING and job["lease_until"] < now)


def claim(store: Store, worker: str, lease_s: float, tables: Tables = EXPORT) -> dict | None:
    """Take the oldest claimable job for ``worker``, or None."""
    now = time.time()
    candidates = sorted((job for _, job in store.kv_list(tables.jobs) if claimable(job, now)),
                        key=lambda j: j["created"])
    for job in candidates:
        if is_cancelled(store, job["id"], tables):
            continue
        attempt = job["attempt"] + 1
        if not store.kv_insert(tables.claims, f"{job['id']}/{attempt}", {"worker": worker, "at": now}):
            continue  # another process won this attempt
        job.update(status=RUNNING, attempt=attempt, worker=worker, lease_until=now + lease_s, exported=0)
        save(store, job, tables)
        return job
    return None


def expired(store: Store, keep_s: float, tables: Tables = EXPORT) -> list[str]:
    """Jobs finished (completed or failed) more than ``keep_s`` seconds ago."""
    limit = time.time() - keep_s
    return [key for key, job in store.kv_list(tables.jobs)
            if job["status"] in (COMPLETED, FAILED) and job.get("completed", limit) < limit]


def forget(store: Store, job_id: str, tables: Tables = EXPORT) -> None:
    """Remove a job's records (after cancellation and clean-up)."""
    job = get(store, job_id, tables)
    store.kv_delete(tables.jobs, job_id)
    for attempt in range(1, (job or {}).get("attempt", 0) + 1):
        store.kv_delete(tables.claims, f"{job_id}/{attempt}")
