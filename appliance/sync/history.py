"""History of chosen columns: every version seen, so status-change dates exist from day one.

``history = ["status"]`` keeps, in the replica table ``<replica_name>__history``, one row
per version seen of each such column: the primary key columns under their own names,
then ``column_name``, ``value``, ``cursor_value`` (the row's cursor when it was read) and
``seen_at`` (ISO UTC). A row is added only when the value differs from the one the
replica holds, so re-reading a row (the lookback window does, every pass) adds nothing.
Written by the sync in the same transaction as the rows.
"""

from __future__ import annotations

from collections.abc import Sequence

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
