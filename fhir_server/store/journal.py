"""The audit spool: events not tied to a resource write, appended to files, one per writing process.

A request's audit facts must be stored before its response leaves, and survive the process dying
just after. One ``os.write`` of a JSON line to a file opened ``O_APPEND`` does that (the kernel holds
it): 5 us, where a SQLite commit to a spool database took 38-72 us of every request's CPU.

Layout: ``<dir>/<ns>-<pid>.jsonl``, appended by one process, which holds a shared ``flock`` on it while
it may still write there; beside it ``<segment>.state``, the offset up to which its events are done
and the lease of a claim in progress. Drainers in any process claim the events after the offset
for a lease, then move the offset when each claimed event is done. A claim whose lease ran out goes
back to the pool (its events may then be handled twice: handlers are idempotent). A segment wholly
done and no longer written is deleted.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import OutboxEvent

log = logging.getLogger("relais.journal")

PREFIX = "j"  # event ids from the journal start with this
_STATE = struct.Struct("<qd")  # done offset, lease end (epoch seconds; 0: no claim)
_ROTATE_BYTES = 16 << 20
_READ_BYTES = 1 << 20


@dataclass
class _Claim:
    """Events of one segment claimed by this process, from the done offset ``start`` to ``end``."""

    start: int
    end: int
    until: float
    open: dict[str, dict] = field(default_factory=dict)  # id -> payload


class Journal:
    """Append-only spool in ``directory``: ``append`` in the request, ``claim``/``done`` in the dispatcher."""

    def __init__(self, directory: str, requeue: Callable[[list[tuple[dict, float]]], None]):
        """``requeue`` takes (payload, delay_s) of released events: retries wait elsewhere, not in line."""
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self._requeue = requeue
        # Two locks: a request thread appending never waits for a dispatcher reading a segment.
        self._append_lock = threading.Lock()
        self._lock = threading.Lock()
        self._active: tuple[int, int, str] | None = None  # (pid, fd, segment name): a descriptor must not cross a fork
        self._claims: dict[str, _Claim] = {}

    def append(self, payloads: list[dict]) -> None:
        """Add ``payloads`` in one write; they survive this process dying once this returns."""
        if not payloads:
            return
        data = "".join(json.dumps(p, separators=(",", ":"), ensure_ascii=False) + "\n" for p in payloads).encode()
        with self._append_lock:
            fd = self._segment_fd()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            rotate = os.fstat(fd).st_size > _ROTATE_BYTES
        if rotate:
            self._close_active()

    def _segment_fd(self) -> int:
        if self._active is None or self._active[0] != os.getpid():
            name = f"{time.time_ns():020d}-{os.getpid()}.jsonl"
            path = os.path.join(self.directory, name)
            fd = os.open(path + ".new", os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            # "Still written": no drainer deletes a segment while this is held. Taken before the
            # segment gets its listed name, so that no drainer ever sees it unheld and empty.
            fcntl.flock(fd, fcntl.LOCK_SH)
            os.rename(path + ".new", path)
            self._active = (os.getpid(), fd, name)
        return self._active[1]

    def _close_active(self) -> None:
        with self._append_lock:
            if self._active is not None and self._active[0] == os.getpid():
                os.close(self._active[1])
            self._active = None

    def claim(self, lease_s: float, limit: int) -> list[OutboxEvent]:
        """Up to ``limit`` events no one holds, leased for ``lease_s``."""
        now = time.time()
        events: list[OutboxEvent] = []
        with self._lock:
            for name, claim in list(self._claims.items()):
                if claim.until <= now:  # our own lease ran out: the events are anyone's again
                    del self._claims[name]
            for name in sorted(n for n in os.listdir(self.directory) if n.endswith(".jsonl")):
                if len(events) >= limit:
                    break
                if name not in self._claims:
                    events += self._claim_segment(name, now, lease_s, limit - len(events))
        return events

    def _claim_segment(self, name: str, now: float, lease_s: float, limit: int) -> list[OutboxEvent]:
        path = os.path.join(self.directory, name)
        try:
            segment = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:  # deleted by another drainer since the listing
            return []
        try:
            with _State(path) as state:
                offset, until = state.read()
                if until > now:
                    return []
                data = _read_lines(segment, offset)
                complete = data[: data.rfind(b"\n") + 1]
                if not complete:
                    if self._finished(segment, path, data):
                        state.remove()
                    return []
                claim = _Claim(offset, offset, now + lease_s)
                events = []
                for line in complete.splitlines(keepends=True):
                    if len(events) >= limit:
                        break
                    start, claim.end = claim.end, claim.end + len(line)
                    event_id = f"{PREFIX}{name}:{start}"
                    try:
                        payload = json.loads(line)
                    except ValueError:
                        log.error("journal %s: unreadable event at byte %d skipped: %r", name, start, line[:200])
                        continue
                    claim.open[event_id] = payload
                    events.append(OutboxEvent(event_id, payload, 1))
                if claim.open:
                    state.write(offset, claim.until)
                    self._claims[name] = claim
                else:  # every line unreadable: nothing to hold
                    state.write(claim.end, 0.0)
                return events
        except FileNotFoundError:
            return []
        finally:
            os.close(segment)

    @staticmethod
    def _finished(segment: int, path: str, rest: bytes) -> bool:
        """Delete a segment whose writer is gone and whose events are all done; True if deleted."""
        try:
            fcntl.flock(segment, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # still written
        if rest:
            log.error("journal %s: %d bytes of an unfinished event left by a process that died", path, len(rest))
        _unlink(path)
        return True

    def done(self, event_ids: list[str]) -> None:
        """Mark claimed events done; a segment's offset moves when all of its claim is."""
        self._resolve(event_ids, requeue=None)

    def release(self, event_ids: list[str], delay_s: float) -> None:
        """Hand claimed events to ``requeue`` (claimable again after ``delay_s``) and drop them from the journal."""
        self._resolve(event_ids, requeue=delay_s)

    def _resolve(self, event_ids: list[str], requeue: float | None) -> None:
        released = []
        with self._lock:
            for event_id in event_ids:
                name = event_id[len(PREFIX):].rpartition(":")[0]
                claim = self._claims.get(name)
                if claim is None or event_id not in claim.open:
                    continue  # the lease ran out: whoever holds the events now finishes them
                payload = claim.open.pop(event_id)
                if requeue is not None:
                    released.append((payload, requeue))
                if not claim.open:
                    del self._claims[name]
                    try:
                        with _State(os.path.join(self.directory, name)) as state:
                            offset, _until = state.read()
                            if offset == claim.start:  # else another drainer took the events over
                                state.write(claim.end, 0.0)
                    except FileNotFoundError:
                        pass
            if released:
                self._requeue(released)

    def pending(self) -> int:
        """Events appended and not yet done (claimed ones included)."""
        count = 0
        for name in os.listdir(self.directory):
            if name.endswith(".jsonl"):
                path = os.path.join(self.directory, name)
                try:
                    with _State(path) as state, open(path, "rb") as segment:
                        segment.seek(state.read()[0])
                        count += segment.read().count(b"\n")
                except FileNotFoundError:
                    continue
        return count

    def close(self) -> None:
        self._close_active()


class _State:
    """A segment's state file, locked (exclusive flock) while open: the only way offsets and leases change."""

    def __init__(self, segment_path: str):
        self.path = segment_path + ".state"

    def __enter__(self) -> _State:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if not os.path.exists(self.path.removesuffix(".state")):  # deleted while this waited for the lock
            self.remove()
            os.close(self.fd)
            raise FileNotFoundError(self.path)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)

    def read(self) -> tuple[int, float]:
        data = os.pread(self.fd, _STATE.size, 0)
        return _STATE.unpack(data) if len(data) == _STATE.size else (0, 0.0)

    def write(self, offset: int, until: float) -> None:
        os.pwrite(self.fd, _STATE.pack(offset, until), 0)

    def remove(self) -> None:
        _unlink(self.path)


def _read_lines(fd: int, offset: int) -> bytes:
    """Bytes from ``offset``: about _READ_BYTES, more if one event is longer (a large Bundle's facts)."""
    size = _READ_BYTES
    while True:
        data = os.pread(fd, size, offset)
        if b"\n" in data or len(data) < size:
            return data
        size *= 2


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:  # another drainer was first
        pass
