"""Start-time conversions of SQLite databases written by earlier versions of the store.

Each step does nothing on a database already brought up, so ``bring_up`` runs them all at every start,
under the writer lock (one process converts, the others then find nothing to do).
"""

from __future__ import annotations

import json
import os
import sqlite3

from .journal import Journal
from .sqlite_schema import TABLES, create_schema


def bring_up(conn: sqlite3.Connection, path: str, journal: Journal | None) -> None:
    """Convert what earlier versions wrote, then create what is missing of the current schema."""
    rekeyed = key_index_rows(conn)
    widened = add_updated_columns(conn)
    create_schema(conn)
    if rekeyed or widened:  # after the DDL: the move reads the rows through si_code
        move_last_updated(conn)
    if journal is not None:
        adopt_spool(path, journal)


def key_index_rows(conn: sqlite3.Connection) -> bool:
    """Bring a database written before resource keys (index rows naming rtype and rid) to the keyed schema.

    One transaction at start: resources are copied in their order (keys follow it), index rows get
    their resource's key, and the old tables go with their indexes. The _id rows go too (see sqlite._stored).
    True if the database was converted.
    """
    columns = {row[1] for row in conn.execute("PRAGMA table_info(search_index)")}
    if "rid" not in columns:
        return False
    for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name IN ('resources', 'search_index')"
        " AND sql IS NOT NULL"
    ).fetchall():
        conn.execute(f'DROP INDEX "{name}"')
    conn.execute("ALTER TABLE resources RENAME TO resources_by_rid")
    conn.execute("ALTER TABLE search_index RENAME TO search_index_by_rid")
    for statement in TABLES:
        if statement.startswith(("CREATE TABLE IF NOT EXISTS resources", "CREATE TABLE IF NOT EXISTS search_index")):
            conn.execute(statement)
    conn.execute(
        "INSERT INTO resources (rtype, rid, version, last_updated, deleted, body)"
        " SELECT rtype, rid, version, last_updated, deleted, body FROM resources_by_rid ORDER BY rowid"
    )
    conn.execute(
        "INSERT INTO search_index (rtype, key, param, kind, system, code, text, low, high)"
        " SELECT s.rtype, r.key, s.param, s.kind, s.system, s.code, s.text, s.low, s.high"
        " FROM search_index_by_rid s JOIN resources r ON r.rtype = s.rtype AND r.rid = s.rid"
        " WHERE s.param != '_id' ORDER BY s.rowid"  # _lastUpdated rows: move_last_updated
    )
    conn.execute("DROP TABLE search_index_by_rid")
    conn.execute("DROP TABLE resources_by_rid")
    return True


def add_updated_columns(conn: sqlite3.Connection) -> bool:
    """Give a ``resources`` table written before updated_low/high its two columns; True if it had to."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(resources)")}
    if columns and "updated_low" not in columns:
        conn.execute("ALTER TABLE resources ADD COLUMN updated_low REAL")
        conn.execute("ALTER TABLE resources ADD COLUMN updated_high REAL")
        return True
    return False


def move_last_updated(conn: sqlite3.Connection) -> None:
    """Move _lastUpdated index rows written before updated_low/high into ``resources``."""
    for (rtype,) in conn.execute("SELECT DISTINCT rtype FROM resources").fetchall():
        rows = "SELECT key, low, high FROM search_index WHERE rtype = ? AND param = '_lastUpdated'"
        if conn.execute(rows + " LIMIT 1", (rtype,)).fetchone():
            conn.execute(f"UPDATE resources SET updated_low = s.low, updated_high = s.high FROM ({rows}) AS s"
                         " WHERE resources.key = s.key", (rtype,))
            conn.execute("DELETE FROM search_index WHERE rtype = ? AND param = '_lastUpdated'", (rtype,))


def adopt_spool(path: str, target: Journal) -> None:
    """Move the events of ``<db>-spool`` (where audit facts waited before the journal) to the journal.

    Called under the main file's writer lock at start, so one process does it.
    """
    spool = f"{path}-spool"
    if not os.path.exists(spool):
        return
    conn = sqlite3.connect(spool, isolation_level=None)
    try:
        payloads = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY seq")]
    except sqlite3.OperationalError:  # no outbox table: nothing was ever spooled
        payloads = []
    finally:
        conn.close()
    target.append(payloads)
    for suffix in ("", "-wal", "-shm", "-writer.lock"):
        if os.path.exists(spool + suffix):
            os.unlink(spool + suffix)
