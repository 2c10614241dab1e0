"""APScheduler in every server process: the outbox dispatcher, store upkeep, expired search snapshots."""

from __future__ import annotations

import atexit
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .export.runner import export_dir
from .export.runner import run_pending as run_exports
from .outbox import outbox_of
from .outbox.runner import DispatcherThread
from .reindex import run_pending as run_reindex
from .searching import paging
from .store.base import Store

log = logging.getLogger("relais.scheduler")


def _maintain(store: Any, task: str) -> None:
    try:
        getattr(store, task)()
    except Exception:
        log.exception("store %s failed", task)


def purge_search_snapshots(store: Store) -> int:
    """Delete expired search snapshots (their links answer 410 either way); the number deleted."""
    try:
        return paging.purge(store, time.time())
    except Exception:
        log.exception("search snapshot purge failed")
        return 0


def _in(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def _job_runner(scheduler: BackgroundScheduler, app: Any, name: str, run: Any) -> None:
    """Run a kind of kicked-off job every 5 s; ``app.extensions["relais_<name>_wakeup"]`` runs it at once.

    The first run is at start: jobs left by a process that stopped resume without waiting.
    """

    def tick() -> None:
        try:
            run()
        except Exception:
            log.exception("%s run failed", name)

    job = scheduler.add_job(tick, "interval", seconds=5, max_instances=1, coalesce=True, id=name,
                            next_run_time=_in(0))
    app.extensions[f"relais_{name}_wakeup"] = lambda: job.modify(next_run_time=_in(0))


def start_scheduler(app: Any, store: Store, config: Config) -> BackgroundScheduler:
    """Start the background jobs of this process (the dispatcher drains ``app``'s outbox); stopped at exit.

    The dispatcher is a thread of its own, woken by each write (``outbox.wake``); shutting the scheduler
    down stops it too, after the drain in progress.
    """
    scheduler = BackgroundScheduler(daemon=True)
    dispatcher = DispatcherThread(outbox_of(app), store, config.dispatcher_interval_s)
    scheduler.add_listener(lambda _event: dispatcher.stop(wait=True), EVENT_SCHEDULER_SHUTDOWN)
    # Store upkeep where the backend has it (SQLite): WAL checkpoints, planner statistics.
    for task, seconds, first_in in (("checkpoint", 2, 2), ("optimize", 600, 30)):
        if hasattr(store, task):
            scheduler.add_job(_maintain, "interval", args=[store, task], seconds=seconds, max_instances=1,
                              coalesce=True, id=f"store-{task}", next_run_time=_in(first_in))
    # Every process purges; a snapshot deleted twice is simply gone.
    scheduler.add_job(purge_search_snapshots, "interval", args=[store], seconds=300, max_instances=1,
                      coalesce=True, id="search-snapshot-purge", next_run_time=_in(60))
    directory = export_dir(store, config)
    _job_runner(scheduler, app, "export", lambda: run_exports(store, directory))
    _job_runner(scheduler, app, "reindex", lambda: run_reindex(store))
    scheduler.start()
    dispatcher.start()
    app.extensions["relais_scheduler"] = scheduler
    app.extensions["relais_dispatcher"] = dispatcher
    atexit.register(lambda: scheduler.running and scheduler.shutdown(wait=False))
    return scheduler
