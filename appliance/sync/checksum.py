"""Row hashes that PostgreSQL and the replica compute identically, for reconciliation.

A row's canonical text is its replica-form values (the forms the sync stores, see
``typemap``), each quoted like an SQL literal (``'it''s'``, NULL bare) and joined by
commas, so it is unambiguous. PostgreSQL builds it in SQL from ``pg_select_expr``; the
replica side builds it in Python from what SQLite returns. Two kinds are written in
binary, as hex: floats (SQLite keeps doubles, so both sides write the IEEE-754 bits) and
timestamps (microseconds since 2000, PostgreSQL's ``timestamp_send``: far cheaper at the
source than ``to_char``; the replica side derives it from the stored ISO text).
A row's hash is the first 64 bits of the MD5 of that text, as a signed integer; a
segment's checksum is the sum of its rows' hashes modulo 2^64, which ignores row order.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import struct
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from ..schema.shape import Column
from .typemap import pg_select_expr, quote_ident

MOD = 2**64
ROWHASH_FUNCTION = "appliance_rowhash"

_ISO = re.compile(r"(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?Z?")
_SPECIAL = {"infinity": "7fffffffffffffff", "-infinity": "8000000000000000"}
# Kinds whose text never holds a quote: the source need not pay for replace() on them.
_PLAIN = frozenset(
    {
        "integer",
        "float",
        "numeric",
        "boolean",
        "timestamptz",
        "timestamp",
        "date",
        "time",
        "interval",
        "uuid",
        "bytea",
    }
)


def h64(text: str) -> int:
    """Return the signed 64-bit hash of a canonical row text."""
    return int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big", signed=True)


def f64(value: Any) -> str:
    """Return the hex IEEE-754 bits of a float value (``-0`` as ``0``, NaN canonical)."""
    return struct.pack(">d", float(value) + 0.0).hex()


def _days(y: int, m: int, d: int) -> int:
    """Return days since 1970-01-01 of a proleptic Gregorian date (any positive year)."""
    y -= m <= 2
    era, yoe = divmod(y, 400)
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


_DAYS_2000 = _days(2000, 1, 1)
_Y2000, _MICRO = datetime(2000, 1, 1), timedelta(microseconds=1)


def ts_send(value: str) -> str:
    """Return PostgreSQL's timestamp_send of a replica ISO timestamp, in hex.

    Text that is not an ISO timestamp (a demo source's own spelling) is hashed as text:
    both sides still agree, since both derive it from the same stored text.
    """
    if len(value) in (26, 27) and value[10] == "T" and value[4] == "-":
        try:  # the common form, parsed in C
            micros = (datetime.fromisoformat(value[:26]) - _Y2000) // _MICRO
            return micros.to_bytes(8, "big", signed=True).hex()
        except ValueError:
            pass
    if value in _SPECIAL:
        return _SPECIAL[value]
    m = _ISO.fullmatch(value)
    if not m:
        return "?" + value
    y, mo, d, hh, mi, ss = (int(g) for g in m.groups()[:6])
    micro = int((m.group(7) or "0").ljust(6, "0"))
    seconds = (_days(y, mo, d) - _DAYS_2000) * 86400 + hh * 3600 + mi * 60 + ss
    return struct.pack(">q", seconds * 1_000_000 + micro).hex()


def _float_text(value: Any) -> str:
    try:
        return f64(value)
    except ValueError:  # text in a float column that is no number: compare it as text
        return "?" + str(value)


def _ts_text(value: Any) -> str:
    return ts_send(value) if isinstance(value, str) else str(value)


def _bytes_text(value: Any) -> str:
    return bytes(value).hex() if isinstance(value, (bytes, bytearray, memoryview)) else str(value)


def _bool_text(value: Any) -> str:
    return str(int(value))


_CONVERT = {
    "float": _float_text,
    "timestamptz": _ts_text,
    "timestamp": _ts_text,
    "bytea": _bytes_text,
    "boolean": _bool_text,
}


def _quoter(kind: str) -> Callable[[Any], str]:
    """Return the function giving a (non-NULL) value's quoted canonical text, as in SQL."""
    convert = _CONVERT.get(kind)
    if kind in _PLAIN:  # no quote can occur: the source skips replace() too
        return (lambda v: f"'{convert(v)}'") if convert else (lambda v: f"'{v}'")
    return lambda v: "'" + (v if isinstance(v, str) else str(v)).replace("'", "''") + "'"


def row_texter(kinds: Sequence[str]) -> Callable[[Sequence[Any]], str]:
    """Return a function giving the canonical text of a row of replica-form values."""
    quote = [_quoter(k) for k in kinds]

    def text(values: Sequence[Any]) -> str:
        return ",".join(["NULL" if v is None else q(v) for v, q in zip(values, quote, strict=True)])

    return text


def row_text(values: Sequence[Any], kinds: Sequence[str]) -> str:
    """Return the canonical text of a row from its replica-form values and column kinds."""
    return row_texter(kinds)(values)


def row_hash(values: Sequence[Any], columns: Sequence[Column]) -> int:
    """Return the hash of a row given in replica form (the Python side)."""
    return h64(row_text(values, [c.kind for c in columns]))


def checksum(hashes: Iterable[int]) -> int:
    """Return the order-independent checksum of some row hashes."""
    return sum(hashes) % MOD


# -- PostgreSQL ---------------------------------------------------------------------------


def pg_value_text(col: Column) -> str:
    """Return the SQL of one column's canonical (unquoted) text; NULL stays NULL."""
    if col.kind == "float":
        # Through the replica form (text), as SQLite parsed it; + 0 turns -0 into 0.
        return f"encode(float8send(({pg_select_expr(col)})::float8 + '0'::float8), 'hex')"
    if col.kind in ("timestamptz", "timestamp"):
        return f"encode({col.kind}_send({quote_ident(col.name)}), 'hex')"
    return f"({pg_select_expr(col)})::text"


def pg_row_text(columns: Sequence[Column]) -> str:
    """Return the SQL expression of a row's canonical text."""
    quoted = []
    for c in columns:
        text = pg_value_text(c)
        if c.kind not in _PLAIN:
            text = f"replace({text}, '''', '''''')"
        quoted.append(f"coalesce('''' || {text} || '''', 'NULL')")
    return " || ',' || ".join(quoted)


def pg_row_hash(columns: Sequence[Column], utf8: bool = True) -> str:
    """Return the SQL expression of a row's signed 64-bit hash (equal to ``h64``).

    md5() hashes text in the server's encoding: UTF-8 servers need no conversion.
    """
    text = pg_row_text(columns)
    if not utf8:
        text = f"convert_to({text}, 'UTF8')"
    return f"('x' || substr(md5({text}), 1, 16))::bit(64)::bigint"


# -- SQLite (the replica) -----------------------------------------------------------------


def register(db: sqlite3.Connection, columns: Sequence[Column]) -> None:
    """Register ``appliance_rowhash(col, ...)`` for a table with these columns."""
    text = row_texter([c.kind for c in columns])

    def rowhash(*values):
        return h64(text(values))

    db.create_function(ROWHASH_FUNCTION, len(columns), rowhash, deterministic=True)


def split_sum(hi: int | None, lo: int | None) -> int:
    """Return the checksum from SQLite's ``sum(h >> 32)`` and ``sum(h & 0xFFFFFFFF)``.

    SQLite's sum() fails on 64-bit overflow, so the replica sums the halves of each hash.
    """
    return ((hi or 0) * 2**32 + (lo or 0)) % MOD
