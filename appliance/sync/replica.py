"""The local replica: user tables plus their sync cursors, written atomically together.

SQLite by default (WAL, synchronous=NORMAL, one writer). Every batch of rows and the
cursor that says how far the table got are committed in one transaction, so a kill -9
or a power cut at any instant loses nothing and duplicates nothing (BRIEF 2).
Bookkeeping lives in ``_appliance_*`` tables, which cannot clash with user tables.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..errors import DiskFullError, ReplicaError
from ..health.store import incremental_if_new, shareable
from ..schema.shape import Column
from .typemap import quote_ident

# Rows per INSERT statement of a bulk insert. SQLite's per-statement work (bind, step,
# reset, the VDBE program's start) is then paid once per group, not once per row: about a
# quarter less CPU on an initial copy (bench_sync). 999 is SQLite's smallest possible limit
# of bound parameters (older builds), so a group never needs more.
ROWS_PER_INSERT = 50
_MAX_PARAMETERS = 999
# What a -wal file is cut back to once its pages are checkpointed. SQLite reuses the file
# from its start but never shrinks it, so one big batch (an initial copy) would keep its
# size for good. A little above the 4 MB at which SQLite checkpoints by itself: an
# ordinary -wal is reused as it is, not cut and grown again (more writes to the card).
WAL_SIZE_LIMIT = 8 * 1024 * 1024


def _null(value: None) -> None:
    return value


# Binding None looks for an adapter the long way (registry, then __adapt__ and __conform__)
# for every NULL: three times the cost of binding a string. A registered adapter is found
# at the first step; it returns None, which binds NULL as before.
sqlite3.register_adapter(type(None), _null)

_MIGRATIONS = [
    """CREATE TABLE _appliance_tables (
        replica_name TEXT PRIMARY KEY,
        source_name TEXT NOT NULL,
        phase TEXT NOT NULL,            -- initial | incremental | full
        cursor_value TEXT,              -- replica form of the cursor of the last row read
        cursor_key TEXT,                -- JSON list: key of that row
        initial_key TEXT,               -- JSON list: last key copied by the initial copy
        initial_hw TEXT,                -- cursor high-water mark when the initial copy began
        columns TEXT NOT NULL,          -- JSON: [[name, source type, kind], ...]
        key TEXT NOT NULL,              -- JSON list of key columns
        last_sync TEXT,
        rows INTEGER NOT NULL DEFAULT 0,
        rows_synced_total INTEGER NOT NULL DEFAULT 0
    )""",
    # Reconciliation caches each row's hash in the user table's `_appliance_hash` column;
    # the signature says which columns (and kinds) those hashes cover.
    """CREATE TABLE _appliance_rowhash (
        replica_name TEXT PRIMARY KEY,
        signature TEXT NOT NULL
    )""",
    # What the last complete incremental pass saw (marks.Mark.stamp): the cursor's maximum
    # and its lookback window's fingerprint; an idle pass that finds both unchanged skips
    # the table's read.
    "ALTER TABLE _appliance_tables ADD COLUMN mark TEXT",
]


@dataclass
class TableState:
    """The bookkeeping row of one replica table."""

    replica_name: str
    source_name: str
    phase: str
    cursor_value: str | None
    cursor_key: list | None
    initial_key: list | None
    initial_hw: str | None
    columns: list[list[str]]
    key: list[str]
    last_sync: str | None
    rows: int
    rows_synced_total: int
    mark: str | None = None


def sqlite_path(url: str) -> str | None:
    """Return the file path of a sqlite:/// URL, or None for other databases."""
    u = sa.make_url(url)
    return u.database if u.get_backend_name() == "sqlite" else None


class Replica:
    """The replica database. Only the agent writes it."""

    def __init__(self, url: str, min_free: tuple[int, int] = (200, 5)) -> None:
        self.min_free = min_free  # (MB, percent of the disk): below the smaller, no write
        path = sqlite_path(url)
        if path is None:
            raise ReplicaError(
                f"replica.url: {sa.make_url(url).get_backend_name()} replicas are "
                f"planned; this version writes SQLite. Use a sqlite:/// URL."
            )
        self.path = path
        try:
            if path not in ("", ":memory:"):
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            if path not in ("", ":memory:"):
                shareable(path)  # group-writable like the state store (health/store.py says why)
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            # Before the first table exists, or it has no effect: a new file can then give
            # freed pages back to the card in steps (appliance.sync.upkeep converts older ones).
            incremental_if_new(self.db)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA busy_timeout=10000")
            self._migrate()
        except sqlite3.Error as e:
            raise ReplicaError(
                f"replica.url: cannot open {path}: {e}. Check that the directory "
                f"exists and is writable by the service user."
            ) from None

    def _migrate(self) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS _appliance_migrations (version INTEGER)")
        done = self.db.execute("SELECT count(*) FROM _appliance_migrations").fetchone()[0]
        for version, sql in enumerate(_MIGRATIONS[done:], start=done):
            with self.transaction():
                self.db.execute(sql)
                self.db.execute("INSERT INTO _appliance_migrations VALUES (?)", (version,))

    def damage(self) -> str:
        """Return SQLite's first complaint about the file's pages ("" when sound).

        A failing SD card damages pages silently; left alone, syncing on top of them ends in
        a crash much later (in the reconciliation). Read-only, one pass over the file.
        """
        try:
            found = self.db.execute("PRAGMA quick_check(1)").fetchone()[0]
        except sqlite3.DatabaseError as e:
            return str(e)
        return "" if found == "ok" else str(found)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def transaction(self):
        """Return a context manager running BEGIN IMMEDIATE .. COMMIT (ROLLBACK on error).

        It first makes sure there is room (``room``); a write that still finds the disk full
        (SQLITE_FULL) is rolled back and reported the same way."""
        return _Transaction(self.db, self.room)

    def room(self) -> None:
        """Raise DiskFullError when the replica's disk has less free space than its margin.

        Checked before every batch: stopping before SQLite runs out keeps the last good data
        whole and readable, on an SD card that fills up over the years.
        """
        if self.path in ("", ":memory:"):
            return
        folder = Path(self.path).parent
        usage = shutil.disk_usage(folder)
        margin = self.margin(usage.total)
        if usage.free < margin:
            raise DiskFullError(
                f"disk full: {usage.free / 1e6:.0f} MB free on {folder}, and the appliance keeps "
                f"{margin / 1e6:.0f} MB free (replica.min_free_mb / min_free_percent) so that no "
                f"write fails halfway; the last good data is kept. Free at least "
                f"{(margin - usage.free) / 1e6:.0f} MB: old logs (journalctl --vacuum-size=50M), "
                f"apt's cache (apt-get clean), files left in {folder}; or move the replica to a "
                f"bigger disk (replica.url). Syncing resumes by itself."
            )

    def margin(self, disk_bytes: int) -> float:
        """Return the bytes kept free on a disk of ``disk_bytes`` (the smaller of the two)."""
        megabytes, percent = self.min_free
        return min(disk_bytes * percent / 100, megabytes * 1_000_000)

    # -- bookkeeping ---------------------------------------------------------------------
    def state(self, replica_name: str) -> TableState | None:
        """Return the bookkeeping of one table, or None before its first sync."""
        row = self.db.execute(
            "SELECT * FROM _appliance_tables WHERE replica_name = ?", (replica_name,)
        ).fetchone()
        if row is None:
            return None
        vals = list(row)
        for i in (4, 5, 7, 8):  # cursor_key, initial_key, columns, key
            vals[i] = json.loads(vals[i], object_hook=_from_json) if vals[i] is not None else None
        return TableState(*vals)

    def save_state(self, st: TableState) -> None:
        """Write the bookkeeping row (call inside the batch's transaction)."""
        self.db.execute(
            "INSERT OR REPLACE INTO _appliance_tables VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                st.replica_name,
                st.source_name,
                st.phase,
                st.cursor_value,
                _json(st.cursor_key),
                _json(st.initial_key),
                st.initial_hw,
                json.dumps(st.columns),
                json.dumps(st.key),
                st.last_sync,
                st.rows,
                st.rows_synced_total,
                st.mark,
            ),
        )

    def states(self) -> list[TableState]:
        names = [r[0] for r in self.db.execute("SELECT replica_name FROM _appliance_tables")]
        return [s for s in (self.state(n) for n in names) if s]

    # -- user tables ---------------------------------------------------------------------
    def create_table(self, name: str, columns: Sequence[Column], key: Sequence[str]) -> None:
        """Create a user table (inside the caller's transaction)."""
        cols = [f"{quote_ident(c.name)} {c.replica_type}" for c in columns]
        if key:
            cols.append(f"PRIMARY KEY ({', '.join(quote_ident(k) for k in key)})")
        self.db.execute(f"CREATE TABLE {quote_ident(name)} ({', '.join(cols)})")

    def table_exists(self, name: str) -> bool:
        return (
            self.db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()
            is not None
        )

    def drop_table(self, name: str) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {quote_ident(name)}")

    def rename_table(self, old: str, new: str) -> None:
        self.db.execute(f"ALTER TABLE {quote_ident(old)} RENAME TO {quote_ident(new)}")

    def insert(self, name: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        """Insert rows that cannot exist yet (initial copy, full refresh), many per statement."""
        rows = rows if isinstance(rows, list) else list(rows)
        width = len(columns)
        per = max(1, min(ROWS_PER_INSERT, _MAX_PARAMETERS // max(width, 1)))
        cols = ", ".join(quote_ident(c) for c in columns)
        one = "(" + ", ".join("?" * width) + ")"
        grouped = len(rows) - len(rows) % per if per > 1 else 0
        if grouped:
            flat = list(chain.from_iterable(rows[:grouped]))
            if len(flat) != grouped * width:  # a short or long row must not shift the others
                raise ValueError(f"insert into {name}: rows do not all have {width} values")
            step = per * width
            self._many(
                f"INSERT INTO {quote_ident(name)} ({cols}) VALUES {', '.join([one] * per)}",
                (flat[i : i + step] for i in range(0, len(flat), step)),
            )
        if grouped < len(rows):
            self._many(f"INSERT INTO {quote_ident(name)} ({cols}) VALUES {one}", rows[grouped:])

    def upsert(
        self, name: str, columns: Sequence[str], key: Sequence[str], rows: Iterable[Sequence[Any]]
    ) -> None:
        """Insert rows or overwrite the ones with the same key (idempotent re-reads)."""
        cols = ", ".join(quote_ident(c) for c in columns)
        marks = ", ".join("?" * len(columns))
        updates = ", ".join(f"{quote_ident(c)} = excluded.{quote_ident(c)}" for c in columns if c not in key)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        conflict = ", ".join(quote_ident(k) for k in key)
        self._many(
            f"INSERT INTO {quote_ident(name)} ({cols}) VALUES ({marks}) ON CONFLICT ({conflict}) {action}",
            rows,
        )

    def delete(self, name: str, key: Sequence[str], keys: Iterable[Sequence[Any]]) -> None:
        """Delete the rows with the given key values."""
        cond = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
        self._many(f"DELETE FROM {quote_ident(name)} WHERE {cond}", keys)

    def count_existing(self, name: str, key: Sequence[str], keys: list[Sequence[Any]]) -> int:
        """Return how many of ``keys`` are already in the table (index lookups only)."""
        found, width = 0, len(key)
        step = max(1, 900 // width)  # stay under SQLite's bound-parameter limit
        cols = ", ".join(quote_ident(k) for k in key)
        for i in range(0, len(keys), step):
            chunk = keys[i : i + step]
            one = "(" + ", ".join("?" * width) + ")"
            where = (
                f"{cols} IN ({', '.join('?' * len(chunk))})"
                if width == 1
                else f"({cols}) IN (VALUES {', '.join([one] * len(chunk))})"
            )
            found += self.db.execute(
                f"SELECT count(*) FROM {quote_ident(name)} WHERE {where}", [v for k in chunk for v in k]
            ).fetchone()[0]
        return found

    def count(self, name: str) -> int:
        return int(self.db.execute(f"SELECT count(*) FROM {quote_ident(name)}").fetchone()[0])

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            self.db.executemany(sql, rows)
        except sqlite3.OperationalError as e:
            if "disk" in str(e) or "full" in str(e):
                raise ReplicaError(
                    f"the replica's disk is full ({e}); the last good data is "
                    f"kept. Free space under {Path(self.path).parent}."
                ) from None
            raise


def _json(value: Any) -> str | None:
    """Return a key (or other state) as JSON; bytes (a bytea key) as {"hex": ...}."""
    return None if value is None else json.dumps(value, default=_to_json)


def _to_json(value: Any) -> dict:
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    raise TypeError(f"cannot store {type(value).__name__} in the sync state")


def _from_json(obj: dict) -> Any:
    return bytes.fromhex(obj["hex"]) if obj.keys() == {"hex"} else obj


class _Transaction:
    def __init__(self, db: sqlite3.Connection, room: Callable[[], None] = lambda: None) -> None:
        self.db, self.room = db, room

    def __enter__(self) -> sqlite3.Connection:
        self.room()
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            try:
                self.db.execute("COMMIT")
            except sqlite3.OperationalError as e:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK")
                _raise_if_full(e)
                raise
        else:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                _raise_if_full(exc)


def _raise_if_full(error: sqlite3.OperationalError) -> None:
    """Turn SQLite's "database or disk is full" into the same outage as the margin check."""
    if "full" in str(error):
        raise DiskFullError(
            f"disk full: SQLite could not write the replica ({error}); the write was rolled back and "
            f"the last good data is kept. Free some space on the card (journalctl --vacuum-size=50M, "
            f"apt-get clean); syncing resumes by itself."
        ) from None
