"""The high-water marks of every table of a pass, in one statement.

Over a distant link each statement costs a round trip (50-100 ms), so an incremental pass
must not ask each table separately for its cursor's maximum and then read each table's
lookback window only to find nothing new (issue 15: an idle pass over 10 tables needs at
most 12 statements). One statement returns, per table:

- ``upper``: the cursor's maximum, in replica form (where this pass stops);
- ``window``: a fingerprint (count and sum of hashes) of the (key, cursor) pairs of the
  rows in ``[upper - lookback, upper]``, the window the next pass re-reads for late
  commits. When the maximum, the fingerprint and the stored cursor are all what the last
  complete pass saw, re-reading the window would bring back exactly the rows the replica
  already holds, so the table's read is skipped. A late commit inside the window, an
  insert, an update that moves a cursor or a delete all change the fingerprint;
- ``nulls``: whether any row has a NULL cursor (those are re-read by key, when there are any).

Only the cursor and key columns are read, through the cursor's index; the statement stays
as short as the per-table ones it replaces.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..config import TableSettings
from ..errors import SourceSchemaError
from ..schema.shape import Column
from .source import Source, _generic_value
from .typemap import pg_select_expr, quote_ident

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mark:
    """One table's high-water mark and the fingerprint of its lookback window."""

    upper: str | None  # the cursor's maximum (replica form, as text); None: no row yet
    window: str | None  # "count:sum" over [upper - lookback, upper]; None: unknown
    nulls: bool = True  # some rows have a NULL cursor (True when unknown)

    def stamp(self) -> str | None:
        """Return what the replica keeps once a pass has read everything up to ``upper``."""
        return None if self.upper is None or self.window is None else f"{self.upper}\n{self.window}"


@dataclass(frozen=True)
class Wanted:
    """A table whose mark the pass needs: its cursor and key columns."""

    table: TableSettings
    cursor: Column
    key: Sequence[Column]


def _alias(i: int) -> str:
    return f"_appliance_hw{i}"


def _part(source: Source, i: int, w: Wanted, lookback: float) -> str:
    ident = source._ident(w.table)
    c = quote_ident(w.cursor.name)
    hw = _alias(i)
    timed = w.cursor.kind in ("timestamptz", "timestamp")
    shift = f" - interval '{float(lookback)} seconds'" if timed else ""
    pairs = ", ".join(f"{ident}.{quote_ident(k.name)}" for k in w.key)
    # hashtextextended: a 64-bit hash of the pair's text; summed, so the order does not count
    window = (
        f"(SELECT count(*) || ':' || coalesce(sum(hashtextextended(ROW({pairs}, {ident}.{c})::text, 0)), 0) "
        f"FROM {ident} WHERE {ident}.{c} >= {hw}.v{shift} AND {ident}.{c} <= {hw}.v)"
    )
    upper = (
        f"(SELECT {pg_select_expr(w.cursor)} FROM {ident} WHERE {c} IS NOT NULL "
        f"ORDER BY {ident}.{c} DESC LIMIT 1)"
    )
    nulls = f"EXISTS (SELECT 1 FROM {ident} WHERE {c} IS NULL)" if w.cursor.nullable else "false"
    return f"(SELECT {i}, {upper}, {window}, {nulls} FROM (SELECT max({c}) AS v FROM {ident}) {hw})"


def read_marks(source: Source, wanted: Sequence[Wanted], lookback: float) -> dict[str, Mark]:
    """Return {table name: Mark} for the wanted tables, in one statement (PostgreSQL).

    Another source (the demo's SQLite file) or a statement the source rejects gives no
    marks: each table then asks for its own maximum, as before.
    """
    if not wanted or not source.is_postgres:
        return {}
    sql = " UNION ALL ".join(_part(source, i, w, lookback) for i, w in enumerate(wanted))
    try:
        rows = source.execute(sql)
    except SourceSchemaError as e:
        log.warning("high-water marks in one statement failed, asking table by table: %s", e)
        return {}
    marks = {}
    for i, upper, window, nulls in rows:
        w = wanted[i]
        value = _generic_value(upper, w.cursor)
        marks[w.table.name] = Mark(None if value is None else str(value), window, bool(nulls))
    return marks
