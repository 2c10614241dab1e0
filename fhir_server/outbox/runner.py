"""The thread that drains one store's outbox: at once when a write rings, else every ``interval_s``."""

from __future__ import annotations

import logging
import threading
import time

from ..store.base import Store
from . import wake
from .dispatcher import Outbox

log = logging.getLogger("relais.dispatcher")

# After a ring, wait this long so that the writes of a burst share one claim: each claim and its
# completion are write transactions of their own, and one per write would compete with the writes.
COALESCE_S = 0.005


class DispatcherThread:
    """Runs ``outbox.drain(store)`` in a daemon thread until ``stop``."""

    def __init__(self, outbox: Outbox, store: Store, interval_s: float) -> None:
        self.outbox = outbox
        self.store = store
        self.interval_s = interval_s
        self._bell = wake.bell(store)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="outbox-dispatcher", daemon=True)

    def start(self) -> DispatcherThread:
        self._thread.start()
        return self

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, wait: bool = True) -> None:
        """Stop after the drain in progress (if any); ``wait``: return once it has ended."""
        self._stopped = True
        self._bell.set()
        if wait and self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    def _run(self) -> None:
        while not self._stopped:
            if self._bell.wait(self.interval_s) and not self._stopped:
                time.sleep(COALESCE_S)
            if self._stopped:
                return
            self._bell.clear()
            try:
                self.outbox.drain(self.store)
            except Exception:
                log.exception("dispatcher run failed")
