"""Upkeep of the two SQLite files on the SD card, hourly between passes.

Three jobs, one place:

- **history retention**: every table's ``__history`` is trimmed to ``[retention]
  history`` and ``history_rows`` (``history.trim``, small batches);
- **incremental VACUUM**: pages freed by deletes go back to the card in bounded steps,
  keeping a few for the next inserts. A file made before ``auto_vacuum=INCREMENTAL`` was
  set (replica.py, store.py) is converted once with a full ``VACUUM``, and only when the
  disk holds two more copies of it plus the margin (the temporary copy and the -wal it
  is written back through); otherwise an event says what is needed, once;
- **WAL checkpoint**: ``TRUNCATE`` cuts the -wal file back to nothing; when a reader
  holds an old snapshot it gives way to ``PASSIVE`` rather than stall the writers.

It runs in the agent, not in the page server's watcher: the agent is the replica's only
writer (readers open it read-only three ways, web/replica_read.py), and between passes no
batch of its own competes for the write lock. Readers never wait: WAL keeps their
snapshot, and every write here is one short statement. The last run's time is kept in the
state store, so ``appliance sync --once`` from a timer gets its upkeep too.
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from ..clock import iso, parse_iso, utcnow
from ..config import Config
from ..health.store import StateStore
from . import history
from .replica import Replica

log = logging.getLogger(__name__)

EVERY = 3600.0  # seconds between two upkeeps: hourly is plenty for files that grow by MBs a day
MARK = "upkeep"  # the state store's key: when the last upkeep ran, and what it did
# Incremental vacuum: pages per statement (4 MB at SQLite's 4 KiB pages: a short write
# lock), statements per upkeep, and free pages left in place for the next inserts, which
# would otherwise grow the file again at once (more writes to the card, not fewer).
VACUUM_STEP = 1024
VACUUM_STEPS = 16
KEEP_FREE_PAGES = 256
CHECKPOINT_WAIT_MS = 250  # how long TRUNCATE may wait for readers before PASSIVE instead


@dataclass
class FileReport:
    """What the upkeep did to one SQLite file."""

    label: str
    converted: bool = False
    skipped: str = ""  # why the conversion to incremental vacuum waits ("" when it did not)
    pages_freed: int = 0
    checkpoint: str = ""  # "truncate" or "passive" (a reader held an old snapshot)
    wal_bytes: int = 0  # the -wal file's size afterwards

    def line(self) -> str:
        parts = [
            f"{self.pages_freed} pages freed",
            f"checkpoint {self.checkpoint}",
            f"-wal {self.wal_bytes} B",
        ]
        if self.converted:
            parts.insert(0, "converted to incremental vacuum")
        if self.skipped:
            parts.insert(0, "not converted (no room)")
        return f"{self.label}: {', '.join(parts)}"


@dataclass
class Report:
    """What one upkeep did."""

    at: str
    history_deleted: int = 0
    files: list[FileReport] = field(default_factory=list)

    def line(self) -> str:
        files = "; ".join(f.line() for f in self.files)
        return f"upkeep: {self.history_deleted} history versions trimmed; {files}"


def due(store: StateStore, now: datetime, every: float = EVERY) -> bool:
    """Return True when the last upkeep is ``every`` seconds old (or never ran)."""
    last = parse_iso((store.get(MARK) or {}).get("at"))
    # A Pi without a real-time clock may have run the last one "in the future" before its
    # clock was set: a time behind the last run counts as due, or upkeep would wait for it.
    return last is None or now < last or (now - last).total_seconds() >= every


def run_if_due(
    config: Config, replica: Replica, store: StateStore, tick: Callable[[], None] = lambda: None
) -> Report | None:
    """Run the upkeep when it is due; never raise (a failed upkeep waits for the next hour)."""
    now = utcnow()
    if not due(store, now):
        return None
    try:
        report = run(config, replica, store, now, tick)
    except (sqlite3.Error, OSError) as e:  # the pass goes on; so does the agent
        log.warning("upkeep failed, tried again in an hour: %s", e)
        store.put(MARK, {**(store.get(MARK) or {}), "at": iso(now), "error": str(e)})
        return None
    log.info("%s", report.line())
    return report


def run(
    config: Config,
    replica: Replica,
    store: StateStore,
    now: datetime | None = None,
    tick: Callable[[], None] = lambda: None,
) -> Report:
    """Trim the history, give freed pages back and checkpoint both files; record it."""
    now = now or utcnow()
    report = Report(at=iso(now))
    cutoff = iso(now - timedelta(seconds=config.retention.history))
    for table in config.tables:  # history turned off later keeps its table: trimmed all the same
        report.history_deleted += history.trim(
            replica, table.replica_name, cutoff, config.retention.history_rows, tick=tick
        )
    skipped = set((store.get(MARK) or {}).get("skipped", []))
    files = [("replica", replica.db, replica.path), ("state store", store.db, str(store.path))]
    for label, db, path in [f for f in files if f[2] not in ("", ":memory:")]:
        # The state store's writers are the agent itself and short ones (page, ack): no tick
        # there, since a progress handler must not write to the connection it watches.
        done = tidy(label, db, Path(path), replica.margin, tick if label == "replica" else None)
        report.files.append(done)
        if done.skipped and path not in skipped:
            store.event("upkeep", done.skipped)  # once per file, not every hour
        skipped = skipped | {path} if done.skipped else skipped - {path}
    store.put(MARK, {"at": report.at, "line": report.line(), "skipped": sorted(skipped)})
    return report


def tidy(
    label: str,
    db: sqlite3.Connection,
    path: Path,
    margin: Callable[[int], float],
    tick: Callable[[], None] | None = None,
) -> FileReport:
    """Convert ``db`` to incremental vacuum if it can, shrink it in steps, checkpoint it."""
    report = FileReport(label)
    if auto_vacuum(db) != "incremental":
        why = no_room_for_copy(label, path, margin)
        if why:
            report.skipped = why
        else:
            convert(db, tick)
            report.converted = True
    report.pages_freed = shrink(db)
    report.checkpoint = checkpoint(db)
    wal = Path(f"{path}-wal")
    report.wal_bytes = wal.stat().st_size if wal.exists() else 0
    return report


def auto_vacuum(db: sqlite3.Connection) -> str:
    """Return the file's auto_vacuum mode: "none", "full" or "incremental"."""
    return ("none", "full", "incremental")[db.execute("PRAGMA auto_vacuum").fetchone()[0]]


def no_room_for_copy(label: str, path: Path, margin: Callable[[int], float]) -> str:
    """Return why ``path`` cannot be vacuumed whole now ("" when the disk has room).

    VACUUM writes the whole file to a temporary copy, then back through the -wal: two more
    copies, beside the margin the sync keeps free (replica.min_free_mb/min_free_percent).
    """
    size = path.stat().st_size + _size(Path(f"{path}-wal"))
    usage = shutil.disk_usage(path.parent)
    needed = 2 * size + margin(usage.total)
    temp = Path(os.environ.get("SQLITE_TMPDIR") or tempfile.gettempdir())
    temp_free = shutil.disk_usage(temp).free if temp.exists() else 0
    apart = temp.exists() and temp.stat().st_dev != path.parent.stat().st_dev
    if usage.free >= needed and (not apart or temp_free >= size):
        return ""
    return (
        f"the {label} {path} ({size / 1e6:.1f} MB) was not converted to incremental vacuum, which "
        f"lets it give the space of deleted rows back to the card: that takes "
        f"{needed / 1e6:.1f} MB free on {path.parent} (two copies of it and the margin of "
        f"replica.min_free_mb / min_free_percent) and {usage.free / 1e6:.1f} MB are free"
        + (f", and {size / 1e6:.1f} MB in {temp}" if apart and temp_free < size else "")
        + ". Nothing is lost meanwhile; free some space (journalctl --vacuum-size=50M, "
        "apt-get clean) and the next hourly upkeep converts it."
    )


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def convert(db: sqlite3.Connection, tick: Callable[[], None] | None = None) -> None:
    """Rewrite the file with auto_vacuum=INCREMENTAL (a full VACUUM: once per file).

    It holds the write lock until done (minutes for a big replica on a Pi): ``tick`` keeps
    the agent's heartbeat (and systemd's watchdog) going meanwhile. Readers read on.
    """
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    if tick is not None:
        db.set_progress_handler(lambda: tick() or 0, 100_000)
    try:
        db.execute("VACUUM")
    finally:
        db.set_progress_handler(None, 0)


def shrink(
    db: sqlite3.Connection,
    keep_free: int = KEEP_FREE_PAGES,
    step: int = VACUUM_STEP,
    steps: int = VACUUM_STEPS,
) -> int:
    """Give free pages beyond ``keep_free`` back to the disk, ``step`` per statement; return how many."""
    if auto_vacuum(db) != "incremental":
        return 0
    freed = 0
    for _ in range(steps):
        excess = db.execute("PRAGMA freelist_count").fetchone()[0] - keep_free
        if excess <= 0:
            break
        n = min(step, excess)
        # executescript steps the PRAGMA to its end; execute() would stop after one page
        # (CPython sees no result columns and resets the statement after its first row).
        db.executescript(f"PRAGMA incremental_vacuum({int(n)})")
        freed += n
    return freed


def checkpoint(db: sqlite3.Connection) -> str:
    """Copy the -wal into the file and cut it to nothing; "passive" when a reader prevents it."""
    timeout = db.execute("PRAGMA busy_timeout").fetchone()[0]
    db.execute(f"PRAGMA busy_timeout={CHECKPOINT_WAIT_MS}")
    try:
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if not busy:
            return "truncate"
        # A reader still reads an old snapshot: copy what it allows and leave the rest to the
        # next upkeep (journal_size_limit cuts the file once it is reused).
        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return "passive"
    finally:
        db.execute(f"PRAGMA busy_timeout={int(timeout)}")
