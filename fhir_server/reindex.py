"""$reindex: recompute the search index rows of stored resources (after a custom SearchParameter), in the background.

A reindex of a whole store outlasts any request (about 190 Patients passed gunicorn's timeout), so the
operation records a job and answers 202; the scheduler's job runner of some process runs it. Jobs live in
the store's keyed tables and are claimed as exports are (``export.jobs``: one process per attempt, a lease
it renews). After every page the job saves its cursor (the type and the last id done) with its counts:
a process that dies leaves the job in progress, and once its lease has expired the next process claims it
and goes on from the cursor. Only the page being written at the crash is done again, which changes
nothing: reindexing a resource twice gives the same rows.
"""

from __future__ import annotations

import logging
import time

from .export import jobs
from .export.runner import WORKER
from .search.extract import index_values
from .searching import custom
from .store.base import Store

log = logging.getLogger("relais.reindex")

TABLES = jobs.Tables("reindex-jobs", "reindex-claims", "reindex-cancelled")
PAGE = 500  # resources a transaction
LEASE_S = 60.0
KEEP_S = 24 * 3600.0  # finished jobs answer their status URL this long


def create(store: Store, resource_types: list[str], owner: str | None) -> dict:
    """Record a job (accepted) reindexing ``resource_types``, from their first resource."""
    return jobs.create(store, TABLES, types=list(resource_types), owner=owner, cursor={"type": 0, "after": None},
                       counts={}, reindexed=0)


def get(store: Store, job_id: str) -> dict | None:
    job = jobs.get(store, job_id, TABLES)
    return None if job is None or jobs.is_cancelled(store, job_id, TABLES) else job


def cancel(store: Store, job_id: str) -> bool:
    """Cancel a job: a running one stops at its next page, its rows so far stay (they are right)."""
    cancelled = jobs.cancel(store, job_id, TABLES)
    job = jobs.get(store, job_id, TABLES)
    if cancelled and job is not None and job["status"] != jobs.RUNNING:
        jobs.forget(store, job_id, TABLES)
    return cancelled


def progress(job: dict) -> str:
    """What X-Progress says: the status, how many resources are done, and the type being reindexed."""
    types, at = job["types"], job["cursor"]["type"]
    running = job["status"] == jobs.RUNNING and at < len(types)
    where = f" ({types[at]}, type {at + 1} of {len(types)})" if running else ""
    return f"{job['status']}: {job['reindexed']} resources reindexed{where}"


def summary(job: dict) -> str:
    """The text of a finished job's OperationOutcome."""
    counts = job["counts"]
    return f"reindexed {job['reindexed']} resources: " + ", ".join(f"{t} {n}" for t, n in counts.items() if n)


class _Cancelled(Exception):
    pass


def run(store: Store, job: dict, page: int = PAGE) -> None:
    """Reindex ``job`` (claimed by this process) from its cursor to its end, saving the cursor after every page."""
    custom.load(store)  # definitions other processes stored since this one started
    try:
        types = job["types"]
        while job["cursor"]["type"] < len(types):
            at, after = job["cursor"]["type"], job["cursor"]["after"]
            resource_type = types[at]
            while found := store.scan(resource_type, after, page):
                if jobs.is_cancelled(store, job["id"], TABLES):
                    raise _Cancelled()
                with store.transaction(durable=False) as txn:
                    for stored in found:
                        txn.reindex(resource_type, stored.id, index_values(stored.resource or {}))
                after = found[-1].id
                job["counts"][resource_type] = job["counts"].get(resource_type, 0) + len(found)
                job["reindexed"] += len(found)
                job["cursor"] = {"type": at, "after": after}
                job["lease_until"] = time.time() + LEASE_S  # saved with the cursor: the lease is renewed
                jobs.save(store, job, TABLES)
            job["cursor"] = {"type": at + 1, "after": None}
    except _Cancelled:
        jobs.forget(store, job["id"], TABLES)
        return
    except Exception as exc:  # the job fails, the process goes on; the trace goes to the log
        log.exception("reindex %s failed", job["id"])
        job.update(status=jobs.FAILED, error=[f"The reindex failed: {type(exc).__name__}"], completed=time.time())
        jobs.save(store, job, TABLES)
        return
    if jobs.is_cancelled(store, job["id"], TABLES):
        jobs.forget(store, job["id"], TABLES)
        return
    job.update(status=jobs.COMPLETED, completed=time.time())
    jobs.save(store, job, TABLES)


def run_pending(store: Store, page: int = PAGE) -> int:
    """Claim and run the waiting jobs one after the other (forgetting long finished ones); how many ran."""
    for job_id in jobs.expired(store, KEEP_S, TABLES):
        jobs.forget(store, job_id, TABLES)
    ran = 0
    while (job := jobs.claim(store, WORKER, LEASE_S, TABLES)) is not None:
        log.info("reindex %s: %d types, from %s", job["id"], len(job["types"]), job["cursor"])
        run(store, job, page)
        ran += 1
    return ran
