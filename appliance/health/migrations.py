"""The state store's schema, one ordered and recorded step at a time.

``PRAGMA user_version`` holds the step a store has reached and ``schema_migrations`` says
when each step ran. Writers (the agent, the page's actions, ``appliance state migrate``)
bring a store forward when they open it; readers only check that it is not newer than this
code, which happens after going back to an older release without restoring the store's
copy: such a store is refused with what to do, never used half-understood.

The steps rebuild the store's history from git: step 1 is the first schema (meta, tables,
events, runs; commit b1a63c2), step 2 the notification outbox (c809bab). Stores made before
steps were recorded are at user_version 0 whatever they hold, so every step is written to
be a no-op on a store that already has its change (``IF NOT EXISTS``). Add a step by
appending to MIGRATIONS; never change one that has shipped.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..clock import iso, utcnow
from ..errors import StateError

STORE_NAME = "state.sqlite"


@dataclass(frozen=True)
class Migration:
    """One step: the schema version it reaches, what it does, and its SQL or function."""

    version: int
    name: str
    steps: tuple[str | Callable[[sqlite3.Connection], None], ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "meta, tables, events and runs",
        (
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            """CREATE TABLE IF NOT EXISTS tables (
        name TEXT PRIMARY KEY, replica_name TEXT, last_sync TEXT, rows INTEGER DEFAULT 0,
        rows_synced_total INTEGER DEFAULT 0, last_error TEXT, error_since TEXT, note TEXT)""",
            """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, table_name TEXT,
        message TEXT NOT NULL)""",
            """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, ok INTEGER,
        rows INTEGER, summary TEXT)""",
        ),
    ),
    Migration(
        2,
        "notification outbox",
        (
            """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, created TEXT NOT NULL, channel TEXT NOT NULL,
        payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL,
        sent TEXT, last_error TEXT)""",
        ),
    ),
)

_RECORD = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"""


def schema_version(db: sqlite3.Connection) -> int:
    """Return the step the store has reached (0: none recorded)."""
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def latest(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Return the schema version these steps reach."""
    return migrations[-1].version if migrations else 0


def check_not_newer(
    db: sqlite3.Connection, path: str | os.PathLike, migrations: Sequence[Migration] = MIGRATIONS
) -> int:
    """Return the store's version; raise StateError when this code does not know it."""
    found, known = schema_version(db), latest(migrations)
    if found > known:
        raise StateError(
            f"the state store {path} is at schema version {found}, but this version of the "
            f"appliance knows versions up to {known}: a newer release wrote it (a rollback "
            f"that did not restore the store's copy?), and it was left as it is. Either go back "
            f"to that newer release (sudo install-on-pi --upgrade ...), restore the copy "
            f"taken before upgrading (sudo install-on-pi --rollback restores it), or stop the "
            f"units and move {path} aside: only health history is lost, the replica stays."
        )
    return found


def migrate(
    db: sqlite3.Connection, path: str | os.PathLike, migrations: Sequence[Migration] = MIGRATIONS
) -> list[Migration]:
    """Apply the steps the store has not had, all in one transaction; return them.

    Cheap when there is nothing to do (one PRAGMA), so every writer can call it on open.
    Two processes opening a store at once cannot both migrate it: the version is read
    again under the write lock.
    """
    if check_not_newer(db, path, migrations) == latest(migrations):
        return []
    doing = "taking the write lock"
    try:
        db.execute("BEGIN IMMEDIATE")
        todo = [m for m in migrations if m.version > check_not_newer(db, path, migrations)]
        doing = "recording the steps"
        db.execute(_RECORD)
        for step in todo:
            doing = f"step {step.version} ({step.name})"
            for sql in step.steps:
                if callable(sql):
                    sql(db)
                else:
                    db.execute(sql)
            db.execute(
                "INSERT OR REPLACE INTO schema_migrations VALUES (?, ?, ?)",
                (step.version, step.name, iso(utcnow())),
            )
        db.execute(f"PRAGMA user_version = {latest(migrations):d}")
        db.execute("COMMIT")
    except BaseException as e:
        if db.in_transaction:  # SQLite may have rolled back already (a full disk does)
            db.execute("ROLLBACK")
        if not isinstance(e, sqlite3.Error):
            raise
        raise StateError(
            f"cannot bring the state store {path} up to schema version {latest(migrations)}: "
            f"{doing} failed: {e}. The store was left as it was. Check that the disk has room, "
            f"that the state folder is writable by the service user and that no other program "
            f"holds the store; if the store is damaged, stop the units and move it aside (only "
            f"health history is lost)."
        ) from None
    return todo


def on_open(db: sqlite3.Connection, path: str | os.PathLike, readonly: bool) -> None:
    """Bring a store opened for writing up to date; only check one opened for reading.

    On failure the connection is closed: the caller never gets a store it cannot use.
    """
    try:
        if readonly:
            check_not_newer(db, path, MIGRATIONS)
        else:
            migrate(db, path, MIGRATIONS)
    except sqlite3.DatabaseError as e:  # the header cannot be read: not a database any more
        db.close()
        raise StateError(
            f"the state store {path} is damaged ({e}). Stop the agent, move the file aside and "
            f"start it again: the replica and its cursors are kept elsewhere, only health "
            f"history is lost."
        ) from None
    except BaseException:
        db.close()
        raise


def applied(db: sqlite3.Connection) -> list[tuple[int, str, str]]:
    """Return (version, name, when) of every recorded step, oldest first."""
    try:
        return db.execute("SELECT version, name, applied FROM schema_migrations ORDER BY version").fetchall()
    except sqlite3.OperationalError:
        return []  # a store from before steps were recorded


def backup(path: Path, target: Path) -> list[Path]:
    """Copy the store (and its -wal, empty after a checkpoint) to ``target``; return the copies.

    The checkpoint first moves every committed page into the main file; the write lock held
    during the copy keeps a late writer (``appliance ack``) out of it. The -shm file is not
    copied: it is an index SQLite rebuilds from the -wal. A byte copy, not SQLite's backup
    API, so that restoring it gives back the very same file.
    """
    db = sqlite3.connect(path, isolation_level=None)
    written: list[Path] = []
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("BEGIN IMMEDIATE")
        for suffix in ("", "-wal"):
            source, copy = Path(f"{path}{suffix}"), Path(f"{target}{suffix}")
            if suffix and not (source.exists() and source.stat().st_size):
                copy.unlink(missing_ok=True)  # no stale -wal beside a fresh copy
                continue
            partial = copy.with_name(copy.name + ".partial")
            shutil.copy2(source, partial)
            os.replace(partial, copy)  # a copy cut short never passes for a whole one
            written.append(copy)
        db.execute("ROLLBACK")
    except (sqlite3.Error, OSError) as e:
        raise StateError(
            f"cannot copy the state store {path} to {target}: {e}. Nothing was migrated. "
            f"Check the disk has room for a copy (df -h {target.parent}) and that the units are stopped."
        ) from None
    finally:
        db.close()
    return written


def migrate_store(state_dir: str | os.PathLike, backup_to: str | None = None) -> str:
    """Copy the store to ``backup_to`` if given, bring it up to date; return what was done."""
    path = Path(state_dir) / STORE_NAME
    if not path.exists():
        return f"no state store at {path} yet: nothing to migrate (the agent creates it up to date)"
    copies = backup(path, Path(backup_to)) if backup_to else []
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA busy_timeout=5000")
        before = schema_version(db)
        done = migrate(db, path, MIGRATIONS)
    except sqlite3.Error as e:
        raise StateError(f"cannot read the state store {path}: {e}") from None
    finally:
        db.close()
    kept = f"; copy before migrating: {', '.join(map(str, copies))}" if copies else ""
    if not done:
        return f"{path}: schema version {before}, up to date{kept}"
    steps = ", ".join(f"{m.version} {m.name}" for m in done)
    return f"{path}: schema version {before} -> {latest()} (applied: {steps}){kept}"
