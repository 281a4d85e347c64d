"""History of chosen columns: every version seen, so status-change dates exist from day one.

``history = ["status"]`` keeps, in the replica table ``<replica_name>__history``, one row
per version seen of each such column: the primary key columns under their own names,
then ``column_name``, ``value``, ``cursor_value`` (the row's cursor when it was read) and
``seen_at`` (ISO UTC). A row is added only when the value differs from the one the
replica holds, so re-reading a row (the lookback window does, every pass) adds nothing.
Written by the sync in the same transaction as the rows.

``trim`` keeps it bounded (``[retention] history`` and ``history_rows``): a version older
than the cut-off goes once a newer version of the same row and column exists (or the row
is gone), so the date the current value was first seen outlives the cut-off; and past
``history_rows`` versions the oldest go, whatever they are: the hard bound on the card.
Each batch is one short statement, so the page's readers and the next pass never wait.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..config import Problem
from ..errors import ConfigError
from .replica import Replica
from .typemap import quote_ident

FIELDS = ("column_name", "value", "cursor_value", "seen_at")


def table_name(replica_name: str) -> str:
    """Return the name of a table's history table."""
    return f"{replica_name}__history"


def ensure(replica: Replica, plan) -> None:
    """Create the history table of a plan's table if it does not exist yet."""
    clash = [k.name for k in plan.key if k.name in FIELDS]
    if clash:
        raise ConfigError(
            [
                Problem(
                    f"history of {plan.table.name}",
                    f"key column {clash[0]} has the name of a history field ({', '.join(FIELDS)})",
                    "rename the column at the source, or drop history",
                )
            ]
        )
    if not plan.key:
        raise ConfigError(
            [
                Problem(
                    f"history of {plan.table.name}",
                    "the table has no primary key",
                    "set primary_key = [...] for it, or drop history",
                )
            ]
        )
    name = quote_ident(table_name(plan.table.replica_name))
    keys = [f"{quote_ident(k.name)} {k.replica_type}" for k in plan.key]
    replica.db.execute(
        f"CREATE TABLE IF NOT EXISTS {name} ({', '.join(keys)}, column_name TEXT NOT NULL, "
        f"value, cursor_value TEXT, seen_at TEXT NOT NULL)"
    )
    index = quote_ident(f"{table_name(plan.table.replica_name)}_key")
    key_list = ", ".join(quote_ident(k.name) for k in plan.key)
    replica.db.execute(f"CREATE INDEX IF NOT EXISTS {index} ON {name} ({key_list}, column_name)")


def record(replica: Replica, plan, rows: Sequence[Sequence], seen_at: str) -> None:
    """Add a version for each history column whose value differs from the replica's."""
    names = plan.names
    tracked = [c for c in plan.table.history if c in names]
    if not rows or not tracked:
        return
    key_at = [names.index(k.name) for k in plan.key]
    cursor_at = names.index(plan.cursor.name) if plan.cursor is not None else None
    target = quote_ident(plan.table.replica_name)
    hist = quote_ident(table_name(plan.table.replica_name))
    key_cols = ", ".join(quote_ident(k.name) for k in plan.key)
    same_key = " AND ".join(f"{quote_ident(k.name)} = ?" for k in plan.key)
    marks = ", ".join("?" * (len(key_at) + len(FIELDS)))
    for column in tracked:
        at = names.index(column)
        # "IS" is NULL-safe equality: an unchanged value (NULL included) adds nothing.
        sql = (
            f"INSERT INTO {hist} ({key_cols}, {', '.join(FIELDS)}) SELECT {marks} "
            f"WHERE NOT EXISTS (SELECT 1 FROM {target} WHERE {same_key} "
            f"AND {quote_ident(column)} IS ?)"
        )
        params = []
        for row in rows:
            key = [row[i] for i in key_at]
            cursor = row[cursor_at] if cursor_at is not None else None
            params.append((*key, column, row[at], cursor, seen_at, *key, row[at]))
        replica.db.executemany(sql, params)


# Rows looked at (and at most deleted) per statement of a trim: a few milliseconds of write
# lock each, even on a Pi's SD card, so a reader or the next batch of the sync never waits.
TRIM_BATCH = 1000


def key_columns(replica: Replica, replica_name: str) -> list[str]:
    """Return the key columns of a table's history table (every column but the fields)."""
    info = replica.db.execute(f"PRAGMA table_info({quote_ident(table_name(replica_name))})")
    return [r[1] for r in info if r[1] not in FIELDS]


def trim(
    replica: Replica,
    replica_name: str,
    older_than: str,
    keep_rows: int,
    batch: int = TRIM_BATCH,
    tick: Callable[[], None] = lambda: None,
) -> int:
    """Delete the versions past their retention, ``batch`` rows per statement; return how many.

    ``older_than`` is an ISO time: an older version goes when it is superseded (or its row
    is gone). Then, while more than ``keep_rows`` are left, the oldest go.
    """
    if not replica.table_exists(table_name(replica_name)):
        return 0
    deleted = _trim_superseded(replica, replica_name, older_than, batch, tick)
    return deleted + _trim_to_count(replica, replica_name, keep_rows, batch, tick)


def _trim_superseded(replica: Replica, replica_name: str, older_than: str, batch: int, tick) -> int:
    hist = quote_ident(table_name(replica_name))
    keys = key_columns(replica, replica_name)
    same_key = " AND ".join(f"newer.{quote_ident(k)} = old.{quote_ident(k)}" for k in keys)
    in_table = " AND ".join(f"t.{quote_ident(k)} = old.{quote_ident(k)}" for k in keys)
    superseded = (
        f"EXISTS (SELECT 1 FROM {hist} AS newer WHERE {same_key} "
        f"AND newer.column_name = old.column_name AND newer.rowid > old.rowid)"
    )
    if replica.table_exists(replica_name):
        superseded += f" OR NOT EXISTS (SELECT 1 FROM {quote_ident(replica_name)} AS t WHERE {in_table})"
    delete = (
        f"DELETE FROM {hist} WHERE rowid IN (SELECT old.rowid FROM {hist} AS old "
        f"WHERE old.rowid > ? AND old.rowid <= ? AND old.seen_at < ? AND ({superseded}))"
    )
    # Walk the table in windows of ``batch`` rowids, oldest first. Versions are appended as
    # they are seen, so the first window without an old version ends the walk.
    deleted, after = 0, 0
    while True:
        window = replica.db.execute(
            f"SELECT max(rowid), min(seen_at) FROM (SELECT rowid, seen_at FROM {hist} "
            f"WHERE rowid > ? ORDER BY rowid LIMIT ?)",
            (after, batch),
        ).fetchone()
        last, oldest = window
        if last is None or oldest >= older_than:
            return deleted
        deleted += replica.db.execute(delete, (after, last, older_than)).rowcount
        after = last
        tick()


def _trim_to_count(replica: Replica, replica_name: str, keep_rows: int, batch: int, tick) -> int:
    hist = quote_ident(table_name(replica_name))
    # count(*) reads the whole table (SQLite keeps no row count); an upkeep does it once.
    excess = replica.db.execute(f"SELECT count(*) FROM {hist}").fetchone()[0] - keep_rows
    deleted = 0
    while excess > 0:
        n = replica.db.execute(
            f"DELETE FROM {hist} WHERE rowid IN (SELECT rowid FROM {hist} ORDER BY rowid LIMIT ?)",
            (min(batch, excess),),
        ).rowcount
        if n <= 0:
            break
        deleted, excess = deleted + n, excess - n
        tick()
    return deleted
