"""Columns the appliance adds to a replica table, each only when it is needed.

- ``_appliance_deleted_at`` (TEXT, ISO UTC): with ``hard_delete_action = "tombstone"``,
  rows deleted at the source stay and carry the time their deletion was found;
- ``_appliance_tag`` (0/1): with ``tag = "<predicate>"``, a virtual generated column
  that SQLite computes from the row itself, so changing the predicate re-tags every row
  at once and costs nothing at the source or on the wire;
- ``_appliance_hash``: reconciliation's cache of each row's hash (see ``rowhash``).
Every upsert resets the deletion mark and the cached hash (the row was just read).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..config import Problem, TableSettings
from ..errors import ConfigError
from .replica import Replica
from .typemap import quote_ident

DELETED = "_appliance_deleted_at"
TAG = "_appliance_tag"
HASH = "_appliance_hash"


def columns(replica: Replica, name: str) -> set[str]:
    """Return the names of a replica table's columns, generated ones included."""
    return {r[1] for r in replica.db.execute(f"PRAGMA table_xinfo({quote_ident(name)})")}


def tag_definition(predicate: str) -> str:
    """Return the column definition of the tag for a predicate."""
    return (
        f"{quote_ident(TAG)} INTEGER GENERATED ALWAYS AS (CASE WHEN ({predicate}) THEN 1 ELSE 0 END) VIRTUAL"
    )


def _ensure_tag(replica: Replica, table: TableSettings, name: str, have: set[str]) -> None:
    sql = replica.db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()[0]
    wanted = tag_definition(table.tag) if table.tag else ""
    if TAG in have and (not wanted or wanted not in sql):
        replica.db.execute(f"ALTER TABLE {quote_ident(name)} DROP COLUMN {quote_ident(TAG)}")
        have.discard(TAG)
    if wanted and TAG not in have:
        try:
            replica.db.execute(f"ALTER TABLE {quote_ident(name)} ADD COLUMN {wanted}")
        except sqlite3.Error as e:
            raise ConfigError(
                [
                    Problem(
                        f"tag of {table.name}",
                        f'SQLite rejected "{table.tag}" ({e})',
                        "write the predicate in SQLite syntax over the replica's columns, e.g. "
                        "created_at < '2024-01-01' (timestamps are ISO text, booleans 0/1)",
                    )
                ]
            ) from None


def ensure(replica: Replica, table: TableSettings, name: str) -> list[str]:
    """Add or update the configured extra columns; return those an upsert resets to NULL."""
    have = columns(replica, name)
    if table.hard_delete_action == "tombstone" and DELETED not in have:
        replica.db.execute(f"ALTER TABLE {quote_ident(name)} ADD COLUMN {quote_ident(DELETED)} TEXT")
        have.add(DELETED)
    _ensure_tag(replica, table, name, have)
    return [c for c in (DELETED, HASH) if c in have]


def live_conditions(replica: Replica, name: str) -> list[str]:
    """Return the SQLite conditions that select the rows not tombstoned."""
    return [f"{quote_ident(DELETED)} IS NULL"] if DELETED in columns(replica, name) else []


def remove(
    replica: Replica, table: TableSettings, name: str, key: Sequence[str], keys: Sequence[Sequence], now: str
) -> None:
    """Delete the rows with these keys, or mark them deleted (tombstone); in a transaction."""
    if table.hard_delete_action != "tombstone":
        replica.delete(name, key, keys)
        return
    cond = " AND ".join(f"{quote_ident(k)} = ?" for k in key)
    replica.db.executemany(
        f"UPDATE {quote_ident(name)} SET {quote_ident(DELETED)} = ? WHERE {cond} "
        f"AND {quote_ident(DELETED)} IS NULL",
        [(now, *k) for k in keys],
    )
