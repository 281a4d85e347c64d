"""The replica's cache of row hashes, so reconciliation hashes only what changed.

Hashing a million rows in Python takes seconds on a Pi; summing a million cached
integers in SQLite takes milliseconds. So each reconciled table carries a bookkeeping
column ``_appliance_hash``: NULL until reconciliation fills it, reset to NULL by every
upsert of the sync (the row was just read). A signature of the hashed columns is kept
in ``_appliance_rowhash``; when the columns change (drift, config), every hash is reset.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

from ..schema.shape import Column
from . import checksum
from .extras import HASH, columns
from .replica import Replica
from .typemap import quote_ident

CHUNK = 20_000  # rowids per transaction: bounded WAL growth, visible progress


def signature(cols: Sequence[Column]) -> str:
    """Return a short fingerprint of the hashed columns and their kinds."""
    text = json.dumps([[c.name, c.kind] for c in cols])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reset_if_changed(replica: Replica, name: str, cols: Sequence[Column]) -> None:
    sig = signature(cols)
    row = replica.db.execute(
        "SELECT signature FROM _appliance_rowhash WHERE replica_name = ?", (name,)
    ).fetchone()
    if row is not None and row[0] == sig:
        return
    with replica.transaction():
        replica.db.execute(f"UPDATE {quote_ident(name)} SET {quote_ident(HASH)} = NULL")
        replica.db.execute("INSERT OR REPLACE INTO _appliance_rowhash VALUES (?, ?)", (name, sig))


def fill(replica: Replica, name: str, cols: Sequence[Column], tick: Callable[[], None] = lambda: None) -> int:
    """Make sure every row of the table has its hash cached; return how many were hashed."""
    table = quote_ident(name)
    if HASH not in columns(replica, name):
        with replica.transaction():
            replica.db.execute(f"ALTER TABLE {table} ADD COLUMN {quote_ident(HASH)} INTEGER")
    _reset_if_changed(replica, name, cols)
    checksum.register(replica.db, cols)
    args = ", ".join(quote_ident(c.name) for c in cols)
    lo, hi = replica.db.execute(f"SELECT min(_rowid_), max(_rowid_) FROM {table}").fetchone()
    hashed = 0
    for start in range(lo or 0, (hi or -1) + 1, CHUNK):
        with replica.transaction():
            cur = replica.db.execute(
                f"UPDATE {table} SET {quote_ident(HASH)} = {checksum.ROWHASH_FUNCTION}({args}) "
                f"WHERE _rowid_ >= ? AND _rowid_ < ? AND {quote_ident(HASH)} IS NULL",
                (start, start + CHUNK),
            )
            hashed += cur.rowcount
        tick()
    return hashed
