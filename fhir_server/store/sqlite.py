"""The embedded backend: stdlib sqlite3 in WAL mode, one connection per thread.

Every write transaction starts with ``BEGIN IMMEDIATE``, which takes the database's single
writer lock up front: concurrent writers (threads or gunicorn processes) queue instead of
failing half-way, so a read-modify-write of a resource's version can never interleave.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import fhirjson
from ..search.query import IndexRow, SearchQuery
from . import journal, sqlite_migrations, sqlite_search
from .base import HistoryPage, OutboxEvent, SearchResult, StoredVersion, VersionConflict
from .journal import Journal

_VERSION_COLUMNS = "rtype, rid, version, last_updated, method, deleted, body"
# An upsert keeps the row, and so its key, where INSERT OR REPLACE would delete it and add a new one.
_UPSERT = (
    "INSERT INTO resources (rtype, rid, version, last_updated, deleted, body, updated_low, updated_high)"
    " VALUES (?,?,?,?,?,?,?,?)"
    " ON CONFLICT (rtype, rid) DO UPDATE SET version=excluded.version, last_updated=excluded.last_updated,"
    " deleted=excluded.deleted, body=excluded.body, updated_low=excluded.updated_low,"
    " updated_high=excluded.updated_high RETURNING key"
)


def _version(row: tuple) -> StoredVersion:
    rtype, rid, version, last_updated, method, deleted, body = row
    return StoredVersion(rtype, rid, version, last_updated, method, fhirjson.loads(body) if body else None,
                         bool(deleted))


def _dumps(doc: Any) -> str:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


class SQLiteTransaction:
    """Writes inside one BEGIN IMMEDIATE ... COMMIT.

    The index rows of new resources wait in ``new_rows`` and go in together, in si_code's order,
    before anything reads the tables and before COMMIT: the rows of a Bundle's resources share many
    keys (one patient, a few codes), and sorted inserts walk each index once. In-lock time of
    Synthea transactions, in-process after 62,000 resources: 395-422 -> 333-356 us a resource.
    """

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.new_rows: list[tuple] = []

    def flush(self) -> None:
        """Insert the waiting index rows."""
        if self.new_rows:
            # (rtype, param, code, system, kind) leads si_code, the widest index
            self.new_rows.sort(key=lambda r: (r[0], r[2], r[5] or "", r[4] or "", r[3]))
            _insert_rows(self.conn, self.new_rows)
            self.new_rows = []

    def current(self, resource_type: str, id: str) -> StoredVersion | None:
        self.flush()
        return _current(self.conn, resource_type, id)

    def put(self, version: StoredVersion, index: list[IndexRow]) -> None:
        # fhirjson: a decimal's text as the client wrote it (0.10, 72.400, 1e2)
        body = None if version.resource is None else fhirjson.dumps_text(version.resource)
        key = (version.resource_type, version.id)
        try:
            self.conn.execute(
                f"INSERT INTO history ({_VERSION_COLUMNS}) VALUES (?,?,?,?,?,?,?)",
                (*key, version.version, version.last_updated, version.method, int(version.deleted), body),
            )
        except sqlite3.IntegrityError:
            raise VersionConflict(f"{key[0]}/{key[1]} version {version.version} exists") from None
        span = next(((row.low, row.high) for row in index if row.param == "_lastUpdated"), (None, None))
        (resource_key,) = self.conn.execute(_UPSERT, (*key, version.version, version.last_updated,
                                                      int(version.deleted), body, *span)).fetchone()
        if version.version == 1:
            # History took version 1, so this resource had no version before and has no rows to replace.
            if not version.deleted:
                self.new_rows.extend((key[0], resource_key, *row) for row in _stored(index))
        else:
            self.flush()
            _replace_rows(self.conn, key[0], resource_key, [] if version.deleted else index)

    def search(self, query: SearchQuery) -> SearchResult:
        self.flush()
        return _search(self.conn, query)

    def reindex(self, resource_type: str, id: str, index: list[IndexRow]) -> None:
        self.flush()
        row = self.conn.execute("SELECT key FROM resources WHERE rtype=? AND rid=?", (resource_type, id)).fetchone()
        if row is not None:
            _replace_rows(self.conn, resource_type, row[0], index)

    def outbox_append(self, payload: dict) -> None:
        self.conn.execute("INSERT INTO outbox (payload, created) VALUES (?, ?)", (_dumps(payload), time.time()))

    def kv_put(self, table: str, key: str, doc: dict) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kv (tbl, key, doc) VALUES (?,?,?)", (table, key, _dumps(doc)))

    def kv_delete(self, table: str, key: str) -> None:
        self.conn.execute("DELETE FROM kv WHERE tbl=? AND key=?", (table, key))


def _replace_rows(conn: sqlite3.Connection, resource_type: str, key: int, index: list[IndexRow]) -> None:
    """Make ``index`` the search rows of the resource ``key``, touching only the rows that differ.

    An update usually changes a few values: each row kept is one random page per index not dirtied.
    """
    stored = {
        IndexRow(*row[1:]): row[0]
        for row in conn.execute(
            "SELECT rowid, param, kind, system, code, text, low, high FROM search_index WHERE key=?", (key,)
        )
    }
    kept = _stored(index)
    wanted = set(kept)
    gone = [(rowid,) for row, rowid in stored.items() if row not in wanted]
    if gone:
        conn.executemany("DELETE FROM search_index WHERE rowid=?", gone)
    _insert_rows(conn, [(resource_type, key, *row) for row in kept if row not in stored])


def _stored(index: list[IndexRow]) -> list[IndexRow]:
    """The rows of ``index`` this backend keeps: distinct, without those ``resources`` answers (_id, _lastUpdated)."""
    return [row for row in dict.fromkeys(index) if row.param not in sqlite_search.FROM_RESOURCES]


def _insert_rows(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    """Insert (rtype, key, *IndexRow) tuples."""
    if rows:
        conn.executemany(
            "INSERT INTO search_index (rtype, key, param, kind, system, code, text, low, high)"
            " VALUES (?,?,?,?,?,?,?,?,?)",
            rows,
        )


def _current(conn: sqlite3.Connection, resource_type: str, id: str) -> StoredVersion | None:
    row = conn.execute(
        "SELECT rtype, rid, version, last_updated, '', deleted, body FROM resources WHERE rtype=? AND rid=?",
        (resource_type, id),
    ).fetchone()
    return _version(row) if row else None


def _search(conn: sqlite3.Connection, query: SearchQuery) -> SearchResult:
    sql, params = sqlite_search.compile_query(query)
    ids = [row[0] for row in conn.execute(sql, params)]
    total = None
    if query.total != "none":
        if query.offset == 0 and len(ids) < query.count:
            total = len(ids)
        else:
            count_sql, count_params = sqlite_search.compile_count(query)
            total = conn.execute(count_sql, count_params).fetchone()[0]
    return SearchResult(ids, total)


_LOCK_WAIT_S = 60.0
_READ_BUSY_MS = 10000
# Checkpoints run in the background (checkpoint()); this is only the backstop if none runs.
# Left at SQLite's 1000 pages, the commit that crosses it pays ~100 ms: +0.44 ms a commit on average.
_AUTOCHECKPOINT_PAGES = 20000
# Address space, not memory: the kernel's page cache backs the mapping, shared by every connection.
_MMAP_BYTES = 1 << 30


def _begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the writer lock, waiting for other processes in short jittered steps (60 s at most)."""
    deadline = time.monotonic() + _LOCK_WAIT_S
    conn.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(random.uniform(0.0001, 0.001))
    finally:
        conn.execute(f"PRAGMA busy_timeout={_READ_BUSY_MS}")


class SQLiteStore:
    """The embedded store; ``url`` is ``sqlite:///path.db``, optionally ``?synchronous=full|normal``."""

    supports_transactions = True

    def __init__(self, url: str):
        path, _, options = url.removeprefix("sqlite:///").partition("?")
        settings = dict(part.partition("=")[::2] for part in options.split("&") if part)
        self.synchronous = settings.get("synchronous", "full").upper()
        if self.synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={self.synchronous.lower()} (expected full or normal)")
        if sqlite3.sqlite_version_info < (3, 35):
            raise ValueError(f"SQLite {sqlite3.sqlite_version} is too old: the store needs 3.35 (2021) or later")
        self.path = path
        # Threads of one process queue here rather than in SQLite, whose busy handler sleeps up to 100 ms;
        # processes queue on _writer_file (flock), a blocking wait in the kernel.
        self._writer = threading.Lock()
        self._writer_fd: tuple[int, int] | None = None  # (pid, fd): a descriptor must not cross a fork
        self._writer_connection: tuple[int, sqlite3.Connection] | None = None  # (pid, connection), likewise
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            os.makedirs(directory, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._writer, self._writer_file():
            conn = self._writer_conn()
            # Kept in the file once set. Under the writer lock: gunicorn's workers open a new file at
            # the same moment, and a second process switching it to WAL got "database is locked".
            conn.execute("PRAGMA journal_mode=WAL")
        # Events not tied to a resource write (the AuditEvent facts of every request) are appended
        # to files of their own (journal.py): a read's audit entry takes no writer lock at all.
        # An in-memory database keeps them in its outbox table.
        self._journal = None if path == ":memory:" else Journal(f"{path}-spool.d", self._requeue)
        with self._write() as conn:
            sqlite_migrations.bring_up(conn, path, self._journal)

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, for reads outside a write transaction."""
        if self.path == ":memory:":
            return self._writer_conn()  # every connection to :memory: is a database of its own
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", None) != os.getpid():
            conn = self._open()
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def _writer_conn(self) -> sqlite3.Connection:
        """This process's one connection for writes; only used under ``_writer``.

        A connection empties its page cache whenever another connection has committed (WAL mode), and a
        write then re-reads every page it walks. Request threads and the dispatcher's threads writing
        through connections of their own emptied each other's caches at every write: one connection
        alternating with another cost 950-1,040 against 660-720 us a create (in-process, 20,000 stored).
        """
        if self._writer_connection is None or self._writer_connection[0] != os.getpid():
            self._writer_connection = (os.getpid(), self._open())
        return self._writer_connection[1]

    def _open(self) -> sqlite3.Connection:
        # A connection must not cross a fork (gunicorn preload): callers open one per process.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=_READ_BUSY_MS / 1000)
        # SQLite itself syncs the WAL at checkpoints only; a durable write syncs it after its commit
        # (_sync_wal), once the writer lock is free: see _write.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        conn.execute("PRAGMA journal_size_limit=67108864")  # the WAL file shrinks back to 64 MB after a reset
        # Every commit by another connection empties this one's page cache (WAL mode), and re-reading
        # pages with pread() copied them out of the kernel at each request; mapped, they are not copied.
        # Measured over HTTP: 2.24 -> 1.77 ms of server CPU per audited read.
        conn.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
        conn.execute("PRAGMA foreign_keys=OFF")
        with self._lock:
            self._all.append(conn)
        return conn

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction; with ``synchronous=full`` a durable one is on disk when this returns.

        The WAL is synced after COMMIT, outside the writer lock (group commit): the next writer
        goes on while this one waits for the disk, and one sync covers every commit written before
        it. Under SQLite's own FULL the sync ran inside the lock: 287 against 438 creates/s with no
        sync at all (gunicorn -w 2). Not durable: the commit reaches the OS (a process crash loses
        nothing) and the disk with the next synced write or checkpoint.
        """
        with self._writer, self._writer_file():
            conn = self._writer_conn()
            _begin_immediate(conn)
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        if durable and self.synchronous == "FULL":
            self._sync_wal()

    def _sync_wal(self) -> None:
        """fdatasync the WAL file: every frame written so far, this process's commit included, is on disk."""
        if self.path == ":memory:":
            return
        fd = os.open(self.path + "-wal", os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fdatasync(fd)
        finally:
            os.close(fd)

    @contextmanager
    def _writer_file(self) -> Iterator[None]:
        """Hold an exclusive flock on ``<db>-writer.lock`` (held by this process's _writer already).

        Other gunicorn workers then sleep in the kernel until it is free, instead of retrying
        BEGIN IMMEDIATE (A/B, 2 workers: 2.41 -> 2.23 and 2.70 -> 2.42 ms of server CPU a create).
        BEGIN IMMEDIATE's retries remain for writers that are not Relais processes.
        """
        if self.path == ":memory:":
            yield
            return
        if self._writer_fd is None or self._writer_fd[0] != os.getpid():
            fd = os.open(self.path + "-writer.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            self._writer_fd = (os.getpid(), fd)
        fd = self._writer_fd[1]
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self, durable: bool = True) -> Iterator[SQLiteTransaction]:
        with self._write(durable) as conn:
            txn = SQLiteTransaction(conn)
            yield txn
            txn.flush()

    def read(self, resource_type: str, id: str, version: int | None = None) -> StoredVersion | None:
        conn = self._conn()
        if version is None:
            return _current(conn, resource_type, id)
        row = conn.execute(
            f"SELECT {_VERSION_COLUMNS} FROM history WHERE rtype=? AND rid=? AND version=?",
            (resource_type, id, version),
        ).fetchone()
        return _version(row) if row else None

    def read_many(self, resource_type: str, ids: list[str]) -> list[StoredVersion]:
        if not ids:
            return []
        found: dict[str, StoredVersion] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            # "+deleted": without statistics (a new database, before the first ANALYZE) the planner
            # takes resources_recent (rtype, deleted) and scans every live resource of the type.
            for row in self._conn().execute(
                f"SELECT rtype, rid, version, last_updated, '', deleted, body FROM resources"
                f" WHERE rtype=? AND +deleted=0 AND rid IN ({marks})",
                (resource_type, *chunk),
            ):
                found[row[1]] = _version(row)
        return [found[i] for i in ids if i in found]

    def scan(self, resource_type: str, after: str | None, limit: int) -> list[StoredVersion]:
        rows = self._conn().execute(
            "SELECT rtype, rid, version, last_updated, '', deleted, body FROM resources"
            " WHERE rtype=? AND deleted=0 AND rid>? ORDER BY rid LIMIT ?",
            (resource_type, after or "", limit),
        ).fetchall()
        return [_version(row) for row in rows]

    def history(
        self,
        resource_type: str | None = None,
        id: str | None = None,
        since: str | None = None,
        cursor: str | None = None,
        count: int = 20,
    ) -> HistoryPage:
        where, params = [], []
        if resource_type is not None:
            where.append("rtype=?")
            params.append(resource_type)
        if id is not None:
            where.append("rid=?")
            params.append(id)
        if since is not None:
            where.append("last_updated>=?")
            params.append(since)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        conn = self._conn()
        total = conn.execute(f"SELECT count(*) FROM history{clause}", params).fetchone()[0]
        page_where = list(where)
        page_params = list(params)
        if cursor is not None:
            page_where.append("seq<?")
            page_params.append(int(cursor))
        page_clause = f" WHERE {' AND '.join(page_where)}" if page_where else ""
        rows = conn.execute(
            f"SELECT seq, {_VERSION_COLUMNS} FROM history{page_clause} ORDER BY seq DESC LIMIT ?",
            (*page_params, count + 1),
        ).fetchall()
        entries = [_version(row[1:]) for row in rows[:count]]
        next_cursor = str(rows[count - 1][0]) if len(rows) > count else None
        return HistoryPage(entries, total, next_cursor)

    def search(self, query: SearchQuery) -> SearchResult:
        return _search(self._conn(), query)

    def explain(self, query: SearchQuery) -> list[str]:
        """SQLite's query plan for ``query``: how tests prove a search uses an index."""
        sql, params = sqlite_search.compile_query(query)
        return [row[-1] for row in self._conn().execute("EXPLAIN QUERY PLAN " + sql, params)]

    def outbox_enqueue(self, payloads: list[dict]) -> None:
        """Events not tied to a resource write, in the journal: a process crash loses none, a power cut may."""
        if self._journal is not None:
            self._journal.append(payloads)
        elif payloads:
            with self.transaction(durable=False) as txn:
                for payload in payloads:
                    txn.outbox_append(payload)

    def outbox_claim(self, worker: str, lease_s: float, limit: int) -> list[OutboxEvent]:
        events = self._claim(worker, lease_s, limit)
        if self._journal is not None:
            events += self._journal.claim(lease_s, limit)
        return events

    def _claim(self, worker: str, lease_s: float, limit: int) -> list[OutboxEvent]:
        now = time.time()
        conn = self._conn()
        # Every process's dispatcher polls every second: an empty outbox costs no writer lock.
        if conn.execute("SELECT 1 FROM outbox WHERE lease_until<=? LIMIT 1", (now,)).fetchone() is None:
            return []
        with self._write(durable=False) as conn:
            rows = conn.execute(
                "SELECT seq, payload, attempts FROM outbox WHERE lease_until<=? ORDER BY seq LIMIT ?", (now, limit)
            ).fetchall()
            if rows:
                conn.executemany(
                    "UPDATE outbox SET lease_owner=?, lease_until=?, attempts=attempts+1 WHERE seq=?",
                    [(worker, now + lease_s, row[0]) for row in rows],
                )
        return [OutboxEvent(str(seq), json.loads(payload), attempts + 1) for seq, payload, attempts in rows]

    def _journaled(self, event_ids: list[str]) -> tuple[list[str], list[str]]:
        """``event_ids`` split into the main file's and the journal's."""
        journaled = [i for i in event_ids if i.startswith(journal.PREFIX)]
        return [i for i in event_ids if not i.startswith(journal.PREFIX)], journaled

    def _requeue(self, released: list[tuple[dict, float]]) -> None:
        """Journal events given back: they wait out their delay in the outbox table, not in the journal's line."""
        now = time.time()
        with self._write(durable=False) as conn:
            # attempts 1: a journal event is claimed once before it comes here.
            conn.executemany(
                "INSERT INTO outbox (payload, created, lease_until, attempts) VALUES (?, ?, ?, 1)",
                [(_dumps(payload), now, now + delay_s) for payload, delay_s in released],
            )

    def outbox_done(self, event_ids: list[str]) -> None:
        main, journaled = self._journaled(event_ids)
        if journaled and self._journal is not None:
            self._journal.done(journaled)
        if main:
            # Losing this at a power cut only redelivers events, which handlers must tolerate anyway.
            with self._write(durable=False) as conn:
                conn.executemany("DELETE FROM outbox WHERE seq=?", [(int(i),) for i in main])

    def outbox_release(self, event_ids: list[str], delay_s: float) -> None:
        main, journaled = self._journaled(event_ids)
        if journaled and self._journal is not None:
            self._journal.release(journaled, delay_s)
        if main:
            with self._write() as conn:
                conn.executemany(
                    "UPDATE outbox SET lease_owner=NULL, lease_until=? WHERE seq=?",
                    [(time.time() + delay_s, int(i)) for i in main],
                )

    def outbox_pending(self) -> int:
        journaled = self._journal.pending() if self._journal is not None else 0
        return self._conn().execute("SELECT count(*) FROM outbox").fetchone()[0] + journaled

    def outbox_oldest_unclaimed(self) -> float | None:
        # lease_until stays 0 until the first claim: the outbox_claimable index finds the oldest at once
        row = self._conn().execute(
            "SELECT created FROM outbox WHERE lease_until=0 AND attempts=0 ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else float(row[0])

    def optimize(self) -> None:
        """Refresh the planner's statistics (sampled, a few ms); without them SQLite picks covering scans.

        Measured on 20,000 Observations: systolic > 180 took 36 ms a page unanalysed, 10 ms analysed.
        """
        with self._write(durable=False) as conn:
            conn.execute("PRAGMA analysis_limit=1000")
            conn.execute("ANALYZE")

    def checkpoint(self) -> None:
        """Copy the WAL into the database without blocking writers (a scheduler job, off the request path)."""
        self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)")

    def kv_put(self, table: str, key: str, doc: dict, durable: bool = True) -> None:
        with self._write(durable) as conn:
            conn.execute("INSERT OR REPLACE INTO kv (tbl, key, doc) VALUES (?,?,?)", (table, key, _dumps(doc)))

    def kv_insert(self, table: str, key: str, doc: dict, durable: bool = True) -> bool:
        with self._write(durable) as conn:
            cursor = conn.execute("INSERT OR IGNORE INTO kv (tbl, key, doc) VALUES (?,?,?)", (table, key, _dumps(doc)))
            return cursor.rowcount == 1

    def kv_get(self, table: str, key: str) -> dict | None:
        row = self._conn().execute("SELECT doc FROM kv WHERE tbl=? AND key=?", (table, key)).fetchone()
        return json.loads(row[0]) if row else None

    def kv_list(self, table: str) -> Iterator[tuple[str, dict]]:
        rows = self._conn().execute("SELECT key, doc FROM kv WHERE tbl=? ORDER BY key", (table,)).fetchall()
        return iter([(key, json.loads(doc)) for key, doc in rows])

    def kv_delete(self, table: str, key: str) -> bool:
        with self._write() as conn:
            return conn.execute("DELETE FROM kv WHERE tbl=? AND key=?", (table, key)).rowcount == 1

    def stats(self) -> dict[str, Any]:
        conn = self._conn()
        return {
            "backend": "sqlite",
            "path": self.path,
            "resources": conn.execute("SELECT count(*) FROM resources WHERE deleted=0").fetchone()[0],
            "versions": conn.execute("SELECT count(*) FROM history").fetchone()[0],
            "outbox": self.outbox_pending(),
        }

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
        with self._lock:
            for conn in self._all:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._all.clear()
            if self._writer_fd is not None and self._writer_fd[0] == os.getpid():
                os.close(self._writer_fd[1])
            self._writer_fd = None
            self._writer_connection = None
        self._local = threading.local()
