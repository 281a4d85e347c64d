"""The state store: health, sync runs, events, heartbeat and acknowledgements.

One SQLite file (``state.sqlite`` in the state directory), WAL mode, so the readers
(web, indicator, ``appliance status``) read while the agent writes. Readers depend on
this file only, never on the source or the tunnel. Events and runs are bounded.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..clock import iso, utcnow
from ..errors import StateError
from . import migrations

EVENTS_KEPT = 10_000
RUNS_KEPT = 2_000

_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tables (
        name TEXT PRIMARY KEY, replica_name TEXT, last_sync TEXT, rows INTEGER DEFAULT 0,
        rows_synced_total INTEGER DEFAULT 0, last_error TEXT, error_since TEXT, note TEXT)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, table_name TEXT,
        message TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, created TEXT NOT NULL, channel TEXT NOT NULL,
        payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL,
        sent TEXT, last_error TEXT)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, ok INTEGER,
        rows INTEGER, summary TEXT)""",
]


def shareable(path: str | os.PathLike) -> None:
    """Create ``path`` (if missing) with mode 0666 less the umask, before SQLite does.

    SQLite makes a new database 0644 less the umask, never group-writable, and its -wal and
    -shm take that mode: the page (another user of the group) could then not write
    acknowledgements, nor the agent a -wal the page made first. The units' UMask=0007
    gives 0660 here.
    """
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o666))
    except OSError:
        pass  # sqlite3.connect reports what is wrong with the folder


def incremental_if_new(db: sqlite3.Connection) -> None:
    """Give a new, empty database file auto_vacuum=INCREMENTAL (sync/upkeep.py converts old ones).

    Only a new one: on an existing file the pragma changes nothing but marks the header for
    writing, and SQLite rewrites it on close, which must never happen to a damaged replica.
    """
    if db.execute("PRAGMA page_count").fetchone()[0] == 0:
        db.execute("PRAGMA auto_vacuum=INCREMENTAL")


class StateStore:
    """Read and write ``state.sqlite``. Cheap to open; readers open it per request."""

    def __init__(self, state_dir: str | os.PathLike, readonly: bool = False) -> None:
        self.path = Path(state_dir) / "state.sqlite"
        try:
            if readonly:
                if not self.path.exists():
                    self.db = sqlite3.connect(":memory:", isolation_level=None)
                else:
                    self.db = sqlite3.connect(
                        f"file:{self.path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
                    )
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                shareable(self.path)
                self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                incremental_if_new(self.db)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self.db.execute("PRAGMA journal_size_limit=8388608")  # as the replica's (replica.py)
            self.db.execute("PRAGMA busy_timeout=5000")
            if not readonly or not self.path.exists():
                for sql in _SCHEMA:
                    self.db.execute(sql)
        except (sqlite3.Error, OSError) as e:
            raise StateError(
                f"cannot open the state store {self.path}: {e}. Check "
                f"appliance.state_dir exists and is writable by the service "
                f"user."
            ) from None
        migrations.on_open(self.db, self.path, readonly)  # outside the try: its errors say what to do

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- key/value -----------------------------------------------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        try:
            row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return default  # a store from before a table existed: nothing recorded yet
            raise StateError(f"cannot read the state store {self.path}: {e}") from None
        except sqlite3.DatabaseError as e:
            raise StateError(
                f"the state store {self.path} is damaged ({e}). Stop the agent, "
                f"move the file aside and start it again: the replica and its "
                f"cursors are kept elsewhere, only health history is lost."
            ) from None
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any) -> None:
        # An unchanged value is not written again: most of a pass's records are the same as the
        # last pass's, and each write costs the SD card at least a page.
        self.db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value "
            "WHERE value IS NOT excluded.value",
            (key, json.dumps(value)),
        )

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Commit the writes made inside as one: a page is then written once, not per statement."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- tables --------------------------------------------------------------------------
    def record_table(
        self,
        name: str,
        replica_name: str,
        *,
        last_sync: str | None = None,
        rows: int | None = None,
        synced: int = 0,
        error: str | None = None,
        note: str | None = None,
        now: str | None = None,
    ) -> None:
        """Record one table's outcome of a pass (a success clears its error)."""
        now = now or iso(utcnow())
        self.db.execute(
            "INSERT OR IGNORE INTO tables (name, replica_name) VALUES (?, ?)", (name, replica_name)
        )
        if error is None:
            self.db.execute(
                "UPDATE tables SET last_sync = coalesce(?, last_sync), rows = coalesce(?, rows),"
                " rows_synced_total = rows_synced_total + ?, last_error = NULL,"
                " error_since = NULL, note = ?, replica_name = ? WHERE name = ?",
                (last_sync, rows, synced, note, replica_name, name),
            )
        else:
            self.db.execute(
                "UPDATE tables SET last_error = ?, error_since = coalesce(error_since, ?),"
                " replica_name = ? WHERE name = ?",
                (error, now, replica_name, name),
            )

    def tables(self) -> dict[str, dict]:
        try:
            cur = self.db.execute("SELECT * FROM tables")
        except sqlite3.OperationalError:
            return {}
        cols = [d[0] for d in cur.description]
        return {r[0]: dict(zip(cols, r, strict=True)) for r in cur}

    # -- events and runs -----------------------------------------------------------------
    def event(self, kind: str, message: str, table: str | None = None, at: str | None = None) -> None:
        """Append an event; the log keeps the newest EVENTS_KEPT."""
        cur = self.db.execute(
            "INSERT INTO events (at, kind, table_name, message) VALUES (?,?,?,?)",
            (at or iso(utcnow()), kind, table, message),
        )
        row_id = cur.lastrowid  # set by every INSERT; None only after other statements
        if row_id is not None and row_id % 100 == 0:
            self.db.execute("DELETE FROM events WHERE id <= ?", (row_id - EVENTS_KEPT,))

    def events(self, limit: int = 50, before: int | None = None) -> list[dict]:
        """Return events newest first (keyset paged by id)."""
        try:
            cur = self.db.execute(
                "SELECT id, at, kind, table_name, message FROM events WHERE id < ? ORDER BY id DESC LIMIT ?",
                (before or 2**62, limit),
            )
        except sqlite3.OperationalError:
            return []
        return [dict(zip(("id", "at", "kind", "table", "message"), r, strict=True)) for r in cur]

    # -- notification outbox ---------------------------------------------------------------
    def enqueue(self, channel: str, payload: dict) -> None:
        """Queue a notification; it survives restarts until sent or given up."""
        import time

        self.db.execute(
            "INSERT INTO outbox (created, channel, payload, next_try) VALUES (?,?,?,?)",
            (iso(utcnow()), channel, json.dumps(payload), time.time()),
        )
        self.db.execute(
            "DELETE FROM outbox WHERE sent IS NOT NULL AND id <= (SELECT max(id) FROM outbox) - 1000"
        )

    def due(self, now: float) -> list[tuple[int, str, dict, int]]:
        rows = self.db.execute(
            "SELECT id, channel, payload, attempts FROM outbox WHERE sent IS NULL "
            "AND next_try <= ? ORDER BY id",
            (now,),
        ).fetchall()
        return [(i, c, json.loads(p), a) for i, c, p, a in rows]

    def claim(self, item_id: int, now: float, until: float) -> bool:
        """Take a due message for one attempt until ``until``; False when another sender has.

        The agent and the page server both deliver (the page's keeps going while the agent
        is down); the claim, one UPDATE, makes each attempt theirs alone.
        """
        cur = self.db.execute(
            "UPDATE outbox SET next_try = ? WHERE id = ? AND sent IS NULL AND next_try <= ?",
            (until, item_id, now),
        )
        return cur.rowcount == 1

    def sent(self, item_id: int) -> None:
        self.db.execute(
            "UPDATE outbox SET sent = ?, attempts = attempts + 1 WHERE id = ?", (iso(utcnow()), item_id)
        )

    def retry_later(self, item_id: int, next_try: float, error: str, give_up: bool) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ?, "
            "sent = CASE WHEN ? THEN 'gave up' END WHERE id = ?",
            (next_try, error, give_up, item_id),
        )

    def outbox(self) -> list[dict]:
        """Return every kept notification, oldest first (``sent`` is "gave up" when abandoned)."""
        cur = self.db.execute(
            "SELECT id, created, channel, payload, attempts, next_try, sent, last_error"
            " FROM outbox ORDER BY id"
        )
        cols = [d[0] for d in cur.description]
        return [{**dict(zip(cols, r, strict=True)), "payload": json.loads(r[3])} for r in cur]

    def trim(self, older_than: dict[str, str], batch: int = 500, batches: int = 20) -> int:
        """Delete events, pass records and finished notifications older than their cut-off.

        ``older_than`` maps "events", "runs", "outbox" to an ISO time. Small batches, each its
        own short transaction, so the agent's writes never wait long; what is left is taken
        on the next call. Returns the rows deleted.
        """
        queries = {
            "events": "DELETE FROM events WHERE id IN "
            "(SELECT id FROM events WHERE at < ? ORDER BY id LIMIT ?)",
            "runs": "DELETE FROM runs WHERE id IN "
            "(SELECT id FROM runs WHERE finished < ? ORDER BY id LIMIT ?)",
            "outbox": "DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE sent IS NOT NULL "
            "AND created < ? ORDER BY id LIMIT ?)",
        }
        deleted = 0
        for table, cutoff in older_than.items():
            for _ in range(batches):
                n = self.db.execute(queries[table], (cutoff, batch)).rowcount
                deleted += n
                if n < batch:
                    break
        return deleted

    def run(self, started: str, finished: str, ok: bool, rows: int, summary: str) -> None:
        cur = self.db.execute(
            "INSERT INTO runs (started, finished, ok, rows, summary) VALUES (?,?,?,?,?)",
            (started, finished, int(ok), rows, summary),
        )
        row_id = cur.lastrowid
        if row_id is not None and row_id % 100 == 0:
            self.db.execute("DELETE FROM runs WHERE id <= ?", (row_id - RUNS_KEPT,))

    def runs(self, limit: int = 20) -> list[dict]:
        try:
            cur = self.db.execute(
                "SELECT id, started, finished, ok, rows, summary FROM runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        except sqlite3.OperationalError:
            return []
        keys = ("id", "started", "finished", "ok", "rows", "summary")
        return [dict(zip(keys, r, strict=True)) for r in cur]
