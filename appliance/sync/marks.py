"""The high-water marks of every table of a pass, in one statement.

Over a distant link each statement costs a round trip (50-100 ms), so an incremental pass
must not ask each table separately for its cursor's maximum and then read each table's
lookback window only to find nothing new (issue 15: an idle pass over 10 tables needs at
most 12 statements). One statement returns, per table:

- ``upper``: the largest *plausible* cursor value, in replica form (where this pass stops);
- ``window``: a fingerprint (count and sum of hashes) of the (key, cursor) pairs of the
  rows in ``[upper - lookback, upper]``, the window the next pass re-reads for late
  commits. When the maximum, the fingerprint and the stored cursor are all what the last
  complete pass saw, re-reading the window would bring back exactly the rows the replica
  already holds, so the table's read is skipped. A late commit inside the window, an
  insert, an update that moves a cursor or a delete all change the fingerprint;
- ``nulls``: whether any row has a NULL cursor (those are re-read by key, when there are any);
- ``high`` / ``low``: whether any row holds a cursor value that cannot be a time of change
  (see ``Span``); those rows are read apart, every pass, like the NULL ones;
- ``size``: the size of the largest of the newest rows, as read (when the columns are
  given): the read's first page holds as many as fit in a page (``pacing``).

Only the cursor and key columns are read, through the cursor's index; the statement stays
as short as the per-table ones it replaces. When it fails because of one table (a migration
holds a lock on it, a slow table hits ``source.statement_timeout``), each table is asked
alone, so that table's error stays its own and the others sync.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from ..config import TableSettings
from ..errors import QueryError, SourceSchemaError
from ..schema.shape import Column
from .pacing import FIRST_SAMPLE
from .source import Source, _generic_value
from .typemap import pg_select_expr, pg_size_expr, quote_ident

log = logging.getLogger(__name__)

# Naive timestamps and dates carry no zone: the source's rows may be stamped in local time,
# up to 14 hours ahead of UTC (UTC+14), which the session's clock (UTC) cannot know.
NAIVE_SKEW = 14 * 3600.0
# Numeric infinities exist from PostgreSQL 14 only (no literal spells them before), and
# NaN sorts above every number: a bound no counter or epoch reaches catches all three.
NUMERIC_LIMIT = "1e300"
# The plain type of each kind whose values can lie outside a cursor's plausible range: bounds
# are cast to it, so that a domain's check or a numeric's precision never refuses a bound.
BASE_TYPES = {
    "timestamptz": "timestamp with time zone",
    "timestamp": "timestamp without time zone",
    "date": "date",
    "numeric": "numeric",
    "float": "double precision",
}
NOT_FINITE = frozenset({"infinity", "-infinity", "nan"})  # lower-cased, as PostgreSQL spells them


@dataclass(frozen=True)
class Mark:
    """One table's high-water mark and the fingerprint of its lookback window."""

    upper: str | None  # the largest plausible cursor value (replica form, as text); None: no row yet
    window: str | None  # "count:sum" over [upper - lookback, upper]; None: unknown
    nulls: bool = True  # some rows have a NULL cursor (True when unknown)
    high: bool = False  # some rows have a cursor above the plausible range (infinity, the future)
    low: bool = False  # some rows have a cursor below it (-infinity)
    ceiling: str | None = None  # the first value above the plausible range, in replica form
    size: float | None = None  # bytes of the largest of the newest rows, as read; None: unknown
    error: str | None = None  # this table's statement failed: why (a lock, a timeout)

    def stamp(self) -> str | None:
        """Return what the replica keeps once a pass has read everything up to ``upper``."""
        return None if self.upper is None or self.window is None else f"{self.upper}\n{self.window}"


@dataclass(frozen=True)
class Wanted:
    """A table whose mark the pass needs: its cursor and key columns."""

    table: TableSettings
    cursor: Column
    key: Sequence[Column]
    columns: Sequence[Column] = ()  # the columns read: their newest rows' size is measured


@dataclass(frozen=True)
class Span:
    """The cursor values that can be a time of change, for one cursor column (SQL).

    One row stamped 'infinity', '9999-12-31' or NaN would otherwise be the maximum for
    good: each pass would start reading at it, and every row written since would be left
    behind while the table says it is up to date. A timestamp counts while it is at most
    ``lookback`` past the source's own clock: a row further ahead would make the next pass
    start after rows written meanwhile (they are later than ``now() - lookback``).
    """

    plausible: str  # condition: the value is inside the range
    high: str  # condition: above it
    low: str  # condition: below it
    ceiling: str  # expression: the first value above the range, in replica form
    floor: str  # replica-form literal: values at or below it are below the range


def span(ident: str, cursor: Column, lookback: float) -> Span | None:
    """Return the plausible range of a cursor column, or None when every value is plausible."""
    c = f"{ident}.{quote_ident(cursor.name)}"
    kind = cursor.kind
    if kind in ("timestamptz", "timestamp", "date"):
        if kind == "timestamptz":
            top = f"(now() + interval '{float(lookback)} seconds')"
        else:
            top = f"(localtimestamp + interval '{float(lookback) + NAIVE_SKEW} seconds')"
        step = "interval '1 microsecond'"
        if kind == "date":
            top, step = f"{top}::date", "1"
        # The first value above the top, as the column's own values are rendered (the same
        # text form both ways): the rows from it up are read apart.
        ceiling = (
            f"(SELECT {pg_select_expr(cursor)} FROM (SELECT ({top} + {step})::{BASE_TYPES[kind]} "
            f"AS {quote_ident(cursor.name)}) _appliance_top)"
        )
        return Span(
            f"{c} > '-infinity' AND {c} <= {top}",
            f"{c} > {top}",
            f"{c} = '-infinity'",
            ceiling,
            "-infinity",
        )
    if kind == "float":  # NaN sorts above Infinity at the source
        return Span(
            f"{c} > '-Infinity' AND {c} < 'Infinity'",
            f"{c} >= 'Infinity'",
            f"{c} = '-Infinity'",
            "'Infinity'",
            "-Infinity",
        )
    if kind == "numeric":
        n = NUMERIC_LIMIT
        return Span(f"{c} >= -{n} AND {c} <= {n}", f"{c} > {n}", f"{c} < -{n}", f"'{n}'", f"-{n}")
    return None


def beyond(value: object, mark: Mark, cursor: Column) -> bool:
    """Return True when a stored cursor value lies outside the plausible range (an agent
    that read an 'infinity' before this check existed): reading from it finds nothing."""
    if value is None:
        return False
    text = str(value)
    if text.lower() in NOT_FINITE:
        return True
    if cursor.kind == "numeric":
        try:
            return abs(Decimal(text)) > Decimal(NUMERIC_LIMIT)
        except InvalidOperation:
            return False
    if cursor.kind in ("timestamptz", "timestamp", "date") and mark.ceiling:
        # Both in the same ISO-8601 text form: compared as text, as the years have 4 digits.
        return text[:1].isdigit() and text >= mark.ceiling
    return False


def _alias(i: int) -> str:
    return f"_appliance_hw{i}"


def _part(source: Source, i: int, w: Wanted, lookback: float) -> str:
    ident = source._ident(w.table)
    c = quote_ident(w.cursor.name)
    hw = _alias(i)
    timed = w.cursor.kind in ("timestamptz", "timestamp")
    shift = f" - interval '{float(lookback)} seconds'" if timed else ""
    pairs = ", ".join(f"{ident}.{quote_ident(k.name)}" for k in w.key)
    rng = span(ident, w.cursor, lookback)
    inside = f" AND {rng.plausible}" if rng else ""
    # hashtextextended: a 64-bit hash of the pair's text; summed, so the order does not count
    window = (
        f"(SELECT count(*) || ':' || coalesce(sum(hashtextextended(ROW({pairs}, {ident}.{c})::text, 0)), 0) "
        f"FROM {ident} WHERE {ident}.{c} >= {hw}.v{shift} AND {ident}.{c} <= {hw}.v)"
    )
    # As text: one statement's rows share their types, and the tables' cursors may not.
    upper = (
        f"(SELECT ({pg_select_expr(w.cursor)})::text FROM {ident} WHERE {ident}.{c} IS NOT NULL{inside} "
        f"ORDER BY {ident}.{c} DESC LIMIT 1)"
    )
    nulls = f"EXISTS (SELECT 1 FROM {ident} WHERE {c} IS NULL)" if w.cursor.nullable else "false"
    high = f"EXISTS (SELECT 1 FROM {ident} WHERE {rng.high})" if rng else "false"
    low = f"EXISTS (SELECT 1 FROM {ident} WHERE {rng.low})" if rng else "false"
    ceiling = rng.ceiling if rng else "NULL::text"
    size = "NULL::bigint"
    if w.columns:  # sizes only: octet_length reads a large value's length, not the value
        cols = ", ".join(quote_ident(col.name) for col in w.columns)
        size = (
            f"(SELECT max({' + '.join(pg_size_expr(col) for col in w.columns)}) FROM (SELECT {cols} "
            f"FROM {ident} WHERE {ident}.{c} IS NOT NULL{inside} ORDER BY {ident}.{c} DESC "
            f"LIMIT {FIRST_SAMPLE}) _appliance_sz{i})"
        )
    return (
        f"(SELECT {i}, {upper}, {window}, {nulls}, {high}, {low}, {ceiling}, {size} "
        f"FROM (SELECT max({ident}.{c}) AS v FROM {ident} WHERE true{inside}) {hw})"
    )


def _marks(rows: list[tuple], wanted: Sequence[Wanted]) -> dict[str, Mark]:
    marks = {}
    for i, upper, window, nulls, high, low, ceiling, size in rows:
        w = wanted[i]
        value = _generic_value(upper, w.cursor)
        marks[w.table.name] = Mark(
            None if value is None else str(value),
            window,
            bool(nulls),
            bool(high),
            bool(low),
            ceiling,
            None if size is None else float(size),
        )
    return marks


def read_marks(source: Source, wanted: Sequence[Wanted], lookback: float) -> dict[str, Mark]:
    """Return {table name: Mark} for the wanted tables, in one statement (PostgreSQL).

    Another source (the demo's SQLite file) gives no marks: each table then asks for its
    own maximum. When the statement fails (a lock, a timeout, a query the source rejects),
    each table is asked alone: a table whose own statement fails gets a Mark holding its
    error (a rejected query: no Mark, its own path reports it), and the others go on.
    A lost connection (SourceError) still ends the pass.
    """
    if not wanted or not source.is_postgres:
        return {}
    sql = " UNION ALL ".join(_part(source, i, w, lookback) for i, w in enumerate(wanted))
    try:
        return _marks(source.execute(sql), wanted)
    except (SourceSchemaError, QueryError) as e:
        if len(wanted) == 1:
            return _failed(wanted[0], e)
        log.warning("high-water marks in one statement failed, asking table by table: %s", e)
    marks: dict[str, Mark] = {}
    for w in wanted:
        marks.update(read_mark(source, w, lookback))
    return marks


def read_mark(source: Source, w: Wanted, lookback: float) -> dict[str, Mark]:
    """Return {table name: Mark} for one table, or its error as above (PostgreSQL)."""
    try:
        return _marks(source.execute(_part(source, 0, w, lookback)), [w])
    except (SourceSchemaError, QueryError) as e:
        return _failed(w, e)


def _failed(w: Wanted, e: Exception) -> dict[str, Mark]:
    if isinstance(e, SourceSchemaError):
        return {}  # the table's own statements say what is wrong with it
    log.warning("%s: its high-water mark could not be read: %s", w.table.name, e)
    return {
        w.table.name: Mark(
            None,
            None,
            error=f"the high-water mark of {w.table.name} could not be read ({e}). A lock held at "
            f"the source (a migration altering the table) or a slow scan does this; the other "
            f"tables go on, and this one is tried again next pass.",
        )
    }


def plausible_max(source: Source, table: TableSettings, cursor: Column, lookback: float) -> str | None:
    """Return the largest plausible cursor value at the source, in replica form (the
    high-water mark an initial copy starts from)."""
    if not source.is_postgres:
        return source.max_cursor(table, cursor)
    ident = source._ident(table)
    c = f"{ident}.{quote_ident(cursor.name)}"
    rng = span(ident, cursor, lookback)
    inside = f" AND {rng.plausible}" if rng else ""
    where = f"{c} IS NOT NULL{inside}"
    rows = source.execute(
        f"SELECT {pg_select_expr(cursor)} FROM {ident} WHERE {where} ORDER BY {c} DESC LIMIT 1"
    )
    return _generic_value(rows[0][0], cursor) if rows else None
