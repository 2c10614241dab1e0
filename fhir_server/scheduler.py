"""APScheduler in every server process: the outbox dispatcher runs on an interval."""

from __future__ import annotations

import atexit
import logging
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from .config import Config
from .export.runner import start_export_jobs
from .store.base import Store
from .subscriptions.dispatcher import dispatch_once

log = logging.getLogger("relais.scheduler")


def _drain(store: Store) -> None:
    try:
        while dispatch_once(store):
            pass
    except Exception:
        log.exception("dispatcher run failed")


def _checkpoint(store: Any) -> None:
    try:
        store.checkpoint()
    except Exception:
        log.exception("checkpoint failed")


def start_scheduler(app: Any, store: Store, config: Config) -> BackgroundScheduler:
    """Start the background jobs of this process; stopped at exit."""
    scheduler = BackgroundScheduler(daemon=True)
    scheduler.add_job(_drain, "interval", args=[store], seconds=config.dispatcher_interval_s,
                      max_instances=1, coalesce=True, id="outbox-dispatcher")
    if hasattr(store, "checkpoint"):
        scheduler.add_job(_checkpoint, "interval", args=[store], seconds=2, max_instances=1, coalesce=True,
                          id="store-checkpoint")
    start_export_jobs(scheduler, app, store, config)
    scheduler.start()
    app.extensions["relais_scheduler"] = scheduler
    atexit.register(lambda: scheduler.running and scheduler.shutdown(wait=False))
    return scheduler
