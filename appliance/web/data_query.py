"""Rows of one replica table: filters, sorting and keyset pages, as parameterised SQL.

Anchored on PostgREST's filters and datasette's keyset pagination. A page is ordered by
the sort column (if any) and then by the table's key (the primary key, else the rowid),
and the next page starts strictly after the last row's (sort value, key): rows the agent
inserts, updates or deletes meanwhile never make a page skip or repeat a row that did
not itself move. Identifiers are quoted, every value is a bound parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import ApplianceError
from .replica_read import BOOKKEEPING, HIDDEN_COLUMNS, ReadOnly

DEFAULT_SIZE, MAX_SIZE = 100, 1000
OPERATORS = {
    "exact": "=",
    "ne": "!=",
    "gt": ">",
    "gte": ">=",
    "lt": "<",
    "lte": "<=",
    "in": "IN",
    "isnull": "",
}
RESERVED = {"_sort", "_sort_desc", "_size", "_next"}
SQLITE_INTEGERS = range(-(2**63), 2**63)  # what SQLite can bind as an integer
# Kinds kept as exact text in the replica (shape.REPLICA_TYPES) that still compare as numbers.
_NUMERIC_TEXT = {"numeric"}


class BadRequest(ApplianceError, ValueError):
    """The request's filters, sort, size or page token cannot be used."""


def quote_ident(name: str) -> str:
    """Return an SQLite identifier, quoted (any name: spaces, quotes, anything)."""
    return '"' + name.replace('"', '""') + '"'


@dataclass
class Column:
    name: str
    type: str  # the replica's declared type
    source_type: str = ""  # the source's type, as the agent recorded it
    kind: str = ""


@dataclass
class TableInfo:
    """What the data API knows of one replica table."""

    name: str
    columns: list[Column]
    key: list[str]  # primary key columns, or ["rowid"]
    source_types: dict[str, tuple[str, str]] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


_INFO: dict[tuple[str, str, int], TableInfo | None] = {}  # (file, table, schema version)


def table_info(ro: ReadOnly, name: str) -> TableInfo | None:
    """Return the table's columns and key, or None when the replica has no such table.

    Cached per schema version of the file: the agent changing a table (a new column, a
    swap after a full refresh) bumps it, and reading it costs one PRAGMA instead of two
    queries per request.
    """
    if name.startswith(BOOKKEEPING):
        return None
    key = (str(ro.path), name, ro.execute("PRAGMA schema_version").fetchone()[0])
    if key not in _INFO:
        if len(_INFO) > 256:  # old versions: forget them all, the live ones come back
            _INFO.clear()
        _INFO[key] = _table_info(ro, name)
    return _INFO[key]


def _table_info(ro: ReadOnly, name: str) -> TableInfo | None:
    rows = ro.execute(f"PRAGMA table_info({quote_ident(name)})").fetchall()
    if not rows:
        return None
    recorded = _recorded_columns(ro, name)
    columns = [
        Column(r[1], r[2] or "", *recorded.get(r[1], ("", ""))) for r in rows if r[1] not in HIDDEN_COLUMNS
    ]
    key = [r[1] for r in sorted(rows, key=lambda r: r[5]) if r[5]]
    return TableInfo(name, columns, key or ["rowid"])


def _recorded_columns(ro: ReadOnly, name: str) -> dict[str, tuple[str, str]]:
    """Return {column: (source type, kind)} as the agent recorded them."""
    try:
        row = ro.execute("SELECT columns FROM _appliance_tables WHERE replica_name = ?", (name,)).fetchone()
    except Exception:  # noqa: BLE001 - a replica from before the bookkeeping: no source types
        return {}
    if not row:
        return {}
    return {c[0]: (c[1], c[2]) for c in json.loads(row[0]) if len(c) >= 3}


@dataclass
class Query:
    """One page request, checked against the table."""

    table: TableInfo
    where: list[str]
    params: list[Any]
    sort: str | None
    desc: bool
    size: int | None
    after: list | None  # (sort value?, *key) of the last row of the previous page

    @property
    def order_columns(self) -> list[str]:
        return ([self.sort] if self.sort else []) + self.table.key


def parse(
    table: TableInfo, args: Mapping[str, str], multi: Mapping[str, list[str]], default_size: int | None
) -> Query:
    """Return the Query that ``args`` (a request's query string) asks for."""
    where: list[str] = []
    params: list[Any] = []
    for key, values in multi.items():
        if key in RESERVED:
            continue
        column, op = _split(table, key)
        for value in values:
            cond, more = _condition(table.column(column), column, op, value)
            where.append(cond)
            params += more
    sort, desc = args.get("_sort"), False
    if args.get("_sort_desc"):
        sort, desc = args["_sort_desc"], True
    if sort is not None and table.column(sort) is None:
        raise BadRequest(f"cannot sort by {sort!r}: the table has no such column")
    if sort in table.key and len(table.key) == 1:
        sort = None if not desc else sort  # the key already orders the page
    size = _size(args.get("_size"), default_size)
    after = _token(args["_next"]) if args.get("_next") else None
    expected = len(table.key) + (1 if sort else 0)
    if after is not None and len(after) != expected:
        raise BadRequest("_next does not belong to this sort order; start again from the first page")
    return Query(table, where, params, sort, desc, size, after)


def _split(table: TableInfo, key: str) -> tuple[str, str]:
    """Return (column, operator) of a filter parameter such as ``total__gte``."""
    if table.column(key) is not None:
        return key, "exact"
    column, _, op = key.rpartition("__")
    if column and op in OPERATORS and table.column(column) is not None:
        return column, op
    raise BadRequest(
        f"unknown filter {key!r}: use COLUMN=value or COLUMN__OP=value with OP one of "
        f"{', '.join(o for o in OPERATORS if o != 'exact')}, for a column of {table.name!r}"
    )


def _condition(col: Column | None, name: str, op: str, value: str) -> tuple[str, list]:
    ident = quote_ident(name)
    numeric = col is not None and col.kind in _NUMERIC_TEXT and op in ("gt", "gte", "lt", "lte")
    lhs = f"CAST({ident} AS REAL)" if numeric else ident
    rhs = "CAST(? AS REAL)" if numeric else "?"
    if op == "isnull":
        if value not in ("1", "0", "true", "false"):
            raise BadRequest(f"{name}__isnull takes 1 or 0, not {value!r}")
        return f"{ident} IS {'' if value in ('1', 'true') else 'NOT '}NULL", []
    if op == "in":
        items = value.split(",")
        return f"{ident} IN ({', '.join('?' * len(items))})", items
    if op == "ne":
        return f"{ident} IS NOT ?", [value]  # NULL is "not equal" to a value too
    return f"{lhs} {OPERATORS[op]} {rhs}", [value]


def _size(raw: str | None, default: int | None) -> int | None:
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 6) or not 1 <= int(raw) <= MAX_SIZE:
        raise BadRequest(f"_size must be a whole number from 1 to {MAX_SIZE}, not {raw!r}")
    return int(raw)


def token(values: list) -> str:
    """Return the ``_next`` token for the last row's order values."""
    data = json.dumps([{"hex": v.hex()} if isinstance(v, bytes) else v for v in values])
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _token(text: str) -> list:
    try:
        values = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: a forged token of lists nested deeper than Python's stack
        raise BadRequest("_next is not a page token of this API; use the 'next' URL as given") from None
    try:
        if not isinstance(values, list):
            raise TypeError
        return [bytes.fromhex(v["hex"]) if isinstance(v, dict) else _scalar(v) for v in values]
    except (TypeError, KeyError, ValueError):
        raise BadRequest("_next is not a page token of this API; use the 'next' URL as given") from None


def _scalar(value: Any) -> Any:
    """Return a token's value if SQLite can bind it (a list, an object or an integer beyond
    64 bits cannot: a forged token)."""
    if isinstance(value, int) and value not in SQLITE_INTEGERS:
        raise ValueError("not a 64-bit integer")
    if value is None or isinstance(value, (str, int, float)):
        return value
    raise TypeError("not a value")


def select(q: Query, limit: int | None) -> tuple[str, list]:
    """Return the SQL and parameters of the page (or of everything after it, without limit)."""
    names = ", ".join(quote_ident(c.name) for c in q.table.columns)
    extra = ", rowid AS _appliance_rowid" if q.table.key == ["rowid"] else ""
    where, params = list(q.where), list(q.params)
    if q.after is not None:
        cond, more = _after(q)
        where.append(cond)
        params += more
    sql = f"SELECT {names}{extra} FROM {quote_ident(q.table.name)}"
    if where:
        sql += " WHERE " + " AND ".join(f"({w})" for w in where)
    way = " DESC" if q.desc else ""
    order = ([_sort_expr(q)] if q.sort else []) + [_ident(k) for k in q.table.key]
    sql += " ORDER BY " + ", ".join(f"{e}{way}" for e in order)
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return sql, params


def _ident(name: str) -> str:
    return "rowid" if name == "rowid" else quote_ident(name)


def _sort_expr(q: Query) -> str:
    """Return the sort column as it orders: exact numerics (text here) by their value.

    Two values that round to the same float tie and are ordered by the key, so the
    order stays total and pages still neither skip nor repeat.
    """
    assert q.sort is not None
    col = q.table.column(q.sort)
    return (
        f"CAST({quote_ident(q.sort)} AS REAL)" if col and col.kind in _NUMERIC_TEXT else quote_ident(q.sort)
    )


def _after(q: Query) -> tuple[str, list]:
    """Return the condition "strictly after the last row" in the page's order.

    SQLite sorts NULL first ascending and last descending; a NULL sort value therefore
    needs its own branch (row values never compare equal to NULL).
    """
    key = ", ".join(_ident(k) for k in q.table.key)
    marks = ", ".join("?" * len(q.table.key))
    cmp = "<" if q.desc else ">"
    assert q.after is not None
    if not q.sort:
        return f"({key}) {cmp} ({marks})", list(q.after)
    value, rest = q.after[0], list(q.after[1:])
    s = _sort_expr(q)
    v = "CAST(? AS REAL)" if s.startswith("CAST(") else "?"
    if value is None:
        if q.desc:  # NULLs come last: only NULL rows with a smaller key remain
            return f"{s} IS NULL AND ({key}) < ({marks})", rest
        return f"{s} IS NOT NULL OR ({key}) > ({marks})", rest
    later = f"{s} {cmp} {v} OR ({s} = {v} AND ({key}) {cmp} ({marks}))"
    if q.desc:
        later += f" OR {s} IS NULL"
    return later, [value, value, *rest]


def order_values(q: Query, row: tuple) -> list:
    """Return the (sort value, key) of a row as ``select`` returned it."""
    names = [c.name for c in q.table.columns]
    values = [row[names.index(q.sort)]] if q.sort else []
    if q.table.key == ["rowid"]:
        return [*values, row[-1]]
    return [*values, *(row[names.index(k)] for k in q.table.key)]
