"""Deliveries of Subscriptions, both kinds: durable per-endpoint queues and a small pool of workers.

The outbox dispatcher only files notifications (``file``): each goes to the queue (a *lane*) of its
endpoint, a keyed table of the store, and the courier's workers send them, off the dispatcher's
thread. So an endpoint that is down or slow holds up its own lane only: never the audit trail, triage,
or another endpoint. A lane is delivered in order, one request at a time
(``RELAIS_RESTHOOK_ENDPOINT_IN_FLIGHT`` lanes per endpoint, a Subscription always in the same one);
``RELAIS_RESTHOOK_WORKERS`` requests are in flight at most, all endpoints together.

A failed request is tried again after 2 s, doubling up to 15 min, for ``RELAIS_RESTHOOK_RETRY_HOURS``
(24) since its first failure; then the Subscription goes to ``error`` with the reason, and its queued
notifications are dropped: a topic-based one's stay in its events (``$events``), a criteria-based one's
go to the dead letters (``relais outbox --retry`` puts them back). Several events waiting for one
topic-based Subscription go in one notification (up to its maxCount); a criteria-based (R4)
Subscription's notifications go one resource at a time, as R4 rest-hook has them (resthook.py).
Across processes a lane is leased, so one process delivers it at a time; a lease left by a killed process
runs out after ``LEASE_S``.

The courier also keeps time: heartbeats to idle Subscriptions that ask for them, and Subscriptions past
their ``end`` turned ``off``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .. import fhirjson
from ..ids import new_id
from ..outbox.dead_letters import DEAD_LETTERS
from . import backport, ledger
from . import bundle as notifications
from . import index as subscription_index
from .acceptance import delivers, end_of, endpoint_allowed, endpoint_of, owner_of
from .lanes import (
    CRITERIA,
    EVENT,
    HANDSHAKE,
    HEARTBEAT,
    LANES,
    Filed,
    backoff,
    entry,
    entry_key,
    lane_of,
    lane_table,
    target_of,
)
from .notify import delivery, may_receive, owner_reader
from .resthook import (
    AUDIT_INTERACTION,
    DeliveryError,
    Notification,
    audit_facts,
    notification,
    notification_headers,
    send,
)
from .settings import Settings
from .status import set_status

log = logging.getLogger("relais.subscriptions")

LEASES = "topic-lane-leases"  # lane -> {"owner": worker, "until": epoch s}
HEARTBEATS = "topic-heartbeats"  # subscription -> {"at": epoch s}: its last heartbeat filed, by any process
LEASE_S = 30.0
ROUND_S = 5.0  # a worker gives its lane back after this long, so a busy lane does not keep it
TICK_S = 0.25  # the scheduler's look at retries due and at lanes filed by other processes
RESCAN_S = 2.0
HOUSEKEEPING_S = 1.0
_KINDS = {EVENT: notifications.EVENT_NOTIFICATION, HANDSHAKE: notifications.HANDSHAKE,
          HEARTBEAT: notifications.HEARTBEAT}


class Courier:
    """The Subscription deliveries of one store in this process: ``file``, then workers deliver."""

    def __init__(self, store: Any, settings: Settings):
        self._store = weakref.ref(store)  # a courier outlives no store (the registry below is keyed weakly)
        self.settings = settings
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self._cond = threading.Condition()
        self._due: dict[str, float] = {}  # lane -> when to look at it next (epoch s)
        self._busy: set[str] = set()
        self._waiting: dict[str, float] = {}  # lane -> when its head, which failed, is tried again
        self._held: dict[str, float] = {}  # lane -> until when this process holds its lease
        self._lanes: set[str] = set()  # lanes this process has registered in LANES
        self.last_activity: dict[str, float] = {}  # subscription -> last notification filed or sent
        self._pool: ThreadPoolExecutor | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    @property
    def store(self) -> Any:
        store = self._store()
        if store is None:
            raise RuntimeError("the courier's store is gone")
        return store

    # --- filing (the dispatcher's thread) ---------------------------------------------------------

    def file(self, filed: list[Filed]) -> None:
        """Put notifications in their lanes (in one durable transaction) and wake the workers."""
        with self.store.transaction() as txn:
            for item in filed:
                if item.lane not in self._lanes:
                    txn.kv_put(LANES, item.lane, {"endpoint": item.endpoint})
                txn.kv_put(lane_table(item.lane), entry_key(item.entry), item.entry)
        for item in filed:
            self._lanes.add(item.lane)
            self.last_activity[item.entry["sid"]] = time.time()
        self.wake({item.lane for item in filed})

    def wake(self, lanes: set[str]) -> None:
        """Have the workers look at ``lanes`` now; not a lane whose head waits for its retry (what was filed
        goes behind it), so a dead endpoint's lane is not read again at every event."""
        now = time.time()
        with self._cond:
            for lane in lanes:
                if self._waiting.get(lane, 0.0) <= now:
                    self._due[lane] = 0.0
            self._cond.notify()

    # --- the workers ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the pool and its scheduler thread (once)."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._pool = ThreadPoolExecutor(max_workers=self.settings.workers, thread_name_prefix="relais-rest-hook")
            self._thread = threading.Thread(target=self._loop, name="relais-courier", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._thread = self._pool = None

    def _loop(self) -> None:
        last_scan = last_housekeeping = 0.0
        while True:
            with self._cond:
                if self._stopping or self._store() is None:
                    return
                self._cond.wait(timeout=TICK_S)
                if self._stopping:
                    return
            now = time.time()
            try:
                if now - last_scan >= RESCAN_S:
                    last_scan = now
                    self._rescan()
                if now - last_housekeeping >= HOUSEKEEPING_S:
                    last_housekeeping = now
                    self.housekeeping(now)
            except Exception:  # the store may be briefly unavailable: the next tick tries again
                log.exception("topic subscription upkeep failed")
            self._submit_due(time.time())

    def _rescan(self) -> None:
        """Lanes filed by other processes (or before a restart) join this process's schedule."""
        for lane, _doc in self.store.kv_list(LANES):
            with self._cond:
                self._due.setdefault(lane, 0.0)

    def _submit_due(self, now: float) -> None:
        with self._cond:
            due = [lane for lane, at in self._due.items() if at <= now and lane not in self._busy]
            for lane in due:
                self._busy.add(lane)
                self._due[lane] = float("inf")  # until the worker says when
        for lane in due:
            assert self._pool is not None
            self._pool.submit(self._run_lane, lane)

    def _run_lane(self, lane: str) -> None:
        next_at: float | None = time.time() + 1.0
        try:
            next_at = self.deliver_lane(lane)
        except Exception:
            log.exception("delivering lane %s failed", lane)
        finally:
            with self._cond:
                self._busy.discard(lane)
                if next_at is not None and next_at > time.time():
                    self._waiting[lane] = self._due[lane] = next_at  # its head waits for its retry
                elif self._due.get(lane) == 0.0:
                    pass  # filed into while it was delivered: look again at once
                elif next_at is None:
                    self._due.pop(lane, None)
                else:
                    self._due[lane] = next_at
                self._cond.notify()

    def run_once(self, now: float | None = None) -> None:
        """Deliver every lane that is due, here and now, then keep time (tests drive the courier so)."""
        for lane, _doc in list(self.store.kv_list(LANES)):
            self.deliver_lane(lane, budget_s=60.0)
        self.housekeeping(now if now is not None else time.time())

    # --- one lane ---------------------------------------------------------------------------------

    def _lease(self, lane: str) -> bool:
        """Whether this process may deliver ``lane`` now. A lease is kept (not given back after each round:
        two writes a notification) and renewed at half its life; another process takes the lane once
        it has run out, when this one died."""
        now = time.time()
        if self._held.get(lane, 0.0) - now > LEASE_S / 2:
            return True
        doc = {"owner": self.worker, "until": now + LEASE_S}
        if not self.store.kv_insert(LEASES, lane, doc, durable=False):
            held = self.store.kv_get(LEASES, lane)
            if held is not None and held.get("owner") != self.worker and held.get("until", 0) >= now:
                return False
            self.store.kv_put(LEASES, lane, doc, durable=False)
        self._held[lane] = doc["until"]
        return True

    def deliver_lane(self, lane: str, budget_s: float = ROUND_S) -> float | None:
        """Send ``lane``'s notifications in order until it is empty (None), waits for a retry, or the budget
        is spent (the time to look again)."""
        if not self._lease(lane):
            return time.time() + 1.0
        deadline = time.monotonic() + budget_s
        entries: list[tuple[str, dict]] = []
        while True:
            if not entries:  # read again only once what was read is sent: a backlog is listed once
                entries = list(self.store.kv_list(lane_table(lane)))
                if not entries:
                    return None
            now = time.time()
            head = entries[0][1]
            if head.get("next_at", 0) > now:
                return head["next_at"]
            consumed: set[str] = set()
            if not self._deliver_head(lane, entries, now, consumed):
                return time.time()  # the head failed: its retry time is on it, read at the next look
            entries = [(key, doc) for key, doc in entries if key not in consumed]
            if time.monotonic() > deadline:
                return time.time()

    def _drop(self, lane: str, keys: list[str], consumed: set[str] | None = None) -> None:
        with self.store.transaction() as txn:  # one commit (and sync) for a run of maxCount events
            for key in keys:
                txn.kv_delete(lane_table(lane), key)
        if consumed is not None:
            consumed.update(keys)

    def _deliver_head(self, lane: str, entries: list[tuple[str, dict]], now: float, consumed: set[str]) -> bool:
        """Send (or drop) the lane's head and what may go with it; False when sending failed."""
        head_key, head = entries[0]
        sid = head["sid"]
        stored = self.store.read("Subscription", sid)
        subscription = stored.resource if stored is not None and not stored.deleted else None
        of_sub = [key for key, doc in entries if doc["sid"] == sid]
        if subscription is None or not delivers(subscription, now):
            log.info("notifications of Subscription/%s dropped: no longer active", sid)
            self._drop(lane, of_sub, consumed)
            return True
        if head["kind"] == CRITERIA:
            return self._deliver_criteria(lane, head_key, head, subscription, now, consumed)
        try:
            settings = backport.read(subscription)
        except backport.Invalid as exc:
            log.warning("notifications of Subscription/%s dropped: %s", sid, exc.message)
            self._drop(lane, of_sub, consumed)
            return True
        run = [(head_key, head)]
        if head["kind"] == HEARTBEAT and len(of_sub) > 1:
            self._drop(lane, [head_key], consumed)  # something more telling goes to it anyway
            return True
        if head["kind"] == EVENT:
            for key, doc in entries[1:]:
                if doc["sid"] != sid or doc["kind"] != EVENT or len(run) >= settings.max_count:
                    break
                run.append((key, doc))
        try:
            request = self._request(subscription, settings, head["kind"], [doc for _, doc in run])
        except DeliveryError as exc:
            self._failed(lane, head_key, head, subscription, exc, now)
            return False
        timeout = min(self.settings.timeout_s, settings.timeout_s or self.settings.timeout_s)
        try:
            status = send(request, timeout)
        except DeliveryError as exc:
            self._audit(subscription, request, exc.status or 502, f"failed: {exc}", exc.sent)
            self._failed(lane, head_key, head, subscription, exc, now)
            return False
        self._audit(subscription, request, status, "", True)
        self._drop(lane, [key for key, _ in run], consumed)
        self.last_activity[sid] = time.time()
        return True

    def _deliver_criteria(self, lane: str, key: str, head: dict, subscription: dict, now: float,
                          consumed: set[str]) -> bool:  # fmt: skip
        """Send a criteria-based Subscription's notification of one version, decided again now: the version
        its owner's client may still read, to an endpoint RELAIS_RESTHOOK_ALLOW still allows."""
        target, sid = target_of(head), subscription["id"]
        stored = self.store.read(head["type"], head["id"], head["version"])
        resource = stored.resource if stored is not None else None
        endpoint = endpoint_of(subscription)
        if resource is None:
            dropped = "version not found"
        elif not may_receive(self.settings.auth, owner_of(subscription), resource, owner_reader(self.store)):
            dropped = "its client may not read it"
        elif not endpoint_allowed(endpoint, self.settings.allowed_endpoints):
            dropped = "endpoint outside RELAIS_RESTHOOK_ALLOW"  # accepted before the list left it out
        else:
            dropped = ""
        if dropped:
            log.info("delivery of %s for Subscription/%s dropped: %s", target, sid, dropped)
            self._drop(lane, [key], consumed)
            return True
        assert resource is not None
        request = notification(subscription, resource)
        try:
            status = send(request, self.settings.timeout_s)
        except DeliveryError as exc:
            if exc.sent:
                self._audit_criteria(subscription, resource, head["version"], request, exc.status or 502, str(exc))
            self._failed(lane, key, head, subscription, exc, now)
            return False
        self._audit_criteria(subscription, resource, head["version"], request, status, "")
        self._drop(lane, [key], consumed)
        self.last_activity[sid] = time.time()
        return True

    def _audit_criteria(self, subscription: dict, resource: dict, version: int, request: Notification, status: int,
                        failure: str) -> None:  # fmt: skip
        from auth.audit import append_events, now_instant

        append_events(self.store, [audit_facts(subscription, resource, version, request, status, failure,
                                               self.settings.server_base, now_instant())])

    def _request(self, subscription: dict, settings: backport.TopicSubscription, kind: str,
                 docs: list[dict]) -> Notification:  # fmt: skip
        endpoint = endpoint_of(subscription)
        if not endpoint_allowed(endpoint, self.settings.allowed_endpoints):
            raise DeliveryError(f"endpoint {endpoint} is outside RELAIS_RESTHOOK_ALLOW")
        sid = subscription["id"]
        numbered = ledger.events(self.store, sid, [doc["n"] for doc in docs if doc.get("n")])
        can_read = owner_reader(self.store)
        owner = owner_of(subscription)
        events = []
        for event in numbered:
            resource, shown_as = ledger.focus(self.store, event)
            shown = shown_as is not None and may_receive(self.settings.auth, owner, shown_as, can_read)
            events.append((event, resource, shown))
        body = notifications.notification(self.settings.server_base, subscription, settings.topic.url,
                                          _KINDS[kind], ledger.last_number(self.store, sid), events,
                                          settings.content)
        headers = notification_headers(subscription)
        headers["Content-Type"] = "application/fhir+json; charset=utf-8"
        return Notification("POST", endpoint, headers, fhirjson.dumps(body))

    def _failed(self, lane: str, key: str, head: dict, subscription: dict, error: DeliveryError, now: float) -> None:
        first = head.get("first_failure") or now
        attempts = int(head.get("attempts") or 0) + 1
        if now - first >= self.settings.retry_hours * 3600.0:
            what = f" (delivery of {target_of(head)})" if head["kind"] == CRITERIA else ""
            reason = (f"notifications to {subscription['channel'].get('endpoint')} kept failing for "
                      f"{self.settings.retry_hours:g} h{what} ({attempts} attempts): {error}")
            set_status(self.store, subscription["id"], "error", reason)
            given_up = [(k, doc) for k, doc in self.store.kv_list(lane_table(lane)) if doc["sid"] == head["sid"]]
            for queued, doc in given_up:  # nothing lost: an operator may put them back once the endpoint is fixed
                if doc["kind"] == CRITERIA:
                    self.store.kv_put(DEAD_LETTERS, new_id(), {
                        "payload": delivery(doc["sid"], doc["type"], doc["id"], doc["version"]),
                        "attempts": attempts if queued == key else 0, "error": reason, "at": now})
            self._drop(lane, [k for k, _doc in given_up])
            return
        wait = backoff(attempts)
        log.warning("notification to Subscription/%s failed (attempt %d, next in %.0f s): %s",
                    subscription["id"], attempts, wait, error)
        # from the failure, not from the attempt's start (``now``): a timeout would eat the wait
        self.store.kv_put(lane_table(lane), key, {**head, "attempts": attempts, "first_failure": first,
                                                   "next_at": time.time() + wait, "error": str(error)[:500]})

    def _audit(self, subscription: dict, request: Notification, status: int, failure: str, reached: bool) -> None:
        if not reached:
            return
        from auth.audit import append_events, now_instant

        message = f"rest-hook notification for Subscription/{subscription['id']}: POST {request.url}"
        append_events(self.store, [dict(
            interaction=AUDIT_INTERACTION, status=status, recorded=now_instant(),
            server_base=self.settings.server_base, client_id=owner_of(subscription), resource_type="Subscription",
            resource_id=subscription["id"], targets=[("Subscription", subscription["id"], None)],
            query=subscription.get("criteria"), message=f"{message} {failure}".strip(), event_id=new_id())])

    # --- keeping time -----------------------------------------------------------------------------

    def housekeeping(self, now: float) -> None:
        """Turn off the Subscriptions past their end; file heartbeats for idle topic-based ones."""
        loaded = subscription_index.loaded(self.store)
        for resource, _version in loaded.subscriptions:
            end = end_of(resource)
            if resource.get("status") in ("active", "requested", "error") and end is not None and end <= now:
                set_status(self.store, resource["id"], "off", None)
        beats = []
        for subscriptions in loaded.topics.values():
            for sub in subscriptions:
                period = sub.settings.heartbeat_s
                if not period or (sub.end is not None and sub.end <= now):
                    continue
                last = self.last_activity.setdefault(sub.id, now)
                lane = lane_of(sub.endpoint, sub.id, self.settings.endpoint_in_flight)
                if self._waiting.get(lane, 0.0) > now:
                    continue  # its endpoint is failing: heartbeats would only pile up behind
                if now - last >= period and self._idle_everywhere(sub.id, period, now):
                    beats.append(Filed(lane, sub.endpoint, entry(sub.id, HEARTBEAT)))
        if beats:
            self.file(beats)


    def _idle_everywhere(self, subscription_id: str, period: float, now: float) -> bool:
        """Idle for this process: is it for every process? Its last event numbered and its last heartbeat
        filed by any of them, read from the store (once a period, when this process thinks it idle)."""
        counter = self.store.kv_get(ledger.COUNTERS, subscription_id) or {}
        beat = self.store.kv_get(HEARTBEATS, subscription_id) or {}
        last = max(counter.get("at", 0.0), beat.get("at", 0.0))
        if now - last < period:
            self.last_activity[subscription_id] = last
            return False
        self.store.kv_put(HEARTBEATS, subscription_id, {"at": now}, durable=False)
        return True



# --- one courier per store, in this process --------------------------------------------------------

_couriers: weakref.WeakKeyDictionary[Any, Courier] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def start(store: Any, settings: Settings, scheduler: Any) -> Courier:
    """Start the courier of ``store`` in this process; it stops when ``scheduler`` (APScheduler) shuts down."""
    from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN

    courier = for_store(store, settings)
    courier.start()
    scheduler.add_listener(lambda _event: courier.stop(), EVENT_SCHEDULER_SHUTDOWN)
    return courier


def for_store(store: Any, settings: Settings) -> Courier:
    """The courier of ``store`` in this process (made on first use)."""
    with _lock:
        courier = _couriers.get(store)
        if courier is None:
            courier = _couriers[store] = Courier(store, settings)
        return courier
