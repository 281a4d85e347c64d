"""How each source column type is read and stored so that nothing is lost (BRIEF 4.3).

Conversion happens in the SELECT at the source wherever possible (timestamps to
ISO-8601 UTC text, booleans to 0/1, arrays to JSON), so the copy loop only moves
strings and SQLite's column affinity does the rest. The README's type table is this file.
"""

from __future__ import annotations

from datetime import timedelta

from ..schema.shape import Column

_PG_KINDS = {
    "int2": "integer",
    "int4": "integer",
    "int8": "integer",
    "oid": "integer",
    "float4": "float",
    "float8": "float",
    "numeric": "numeric",
    "bool": "boolean",
    "timestamptz": "timestamptz",
    "timestamp": "timestamp",
    "date": "date",
    "time": "time",
    "timetz": "time",
    "interval": "interval",
    "uuid": "uuid",
    "json": "json",
    "jsonb": "json",
    "bytea": "bytea",
    "text": "text",
    "varchar": "text",
    "bpchar": "text",
    "name": "text",
    "citext": "text",
}


def pg_kind(typname: str, typtype: str, typcategory: str) -> str:
    """Return our kind for a PostgreSQL type (domains already resolved to their base)."""
    if typcategory == "A":
        return "array"
    if typtype == "e":
        return "enum"
    return _PG_KINDS.get(typname, "other")


def quote_ident(name: str) -> str:
    """Return ``name`` as a double-quoted SQL identifier (spaces, case, quotes kept)."""
    return '"' + name.replace('"', '""') + '"'


def pg_select_expr(col: Column) -> str:
    """Return the SQL expression that reads ``col`` in its replica form at the source."""
    c = quote_ident(col.name)
    k = col.kind
    if k == "timestamptz":
        # to_char gives NULL for +-infinity; keep those as their text instead of losing them.
        # Its YYYY drops the era: a date before year 1 says " BC" as PostgreSQL's own text does.
        return (
            f"coalesce(to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
            f" || CASE WHEN {c} < '0001-01-01 00:00:00+00' THEN ' BC' ELSE '' END, {c}::text)"
        )
    if k == "timestamp":
        return (
            f"coalesce(to_char({c}, 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            f" || CASE WHEN {c} < '0001-01-01 00:00:00' THEN ' BC' ELSE '' END, {c}::text)"
        )
    if k == "boolean":
        return f"{c}::int"
    if k == "array":
        return f"array_to_json({c})::text"
    if k == "bytea":
        return f"encode({c}, 'hex')"
    if k == "integer":
        return c
    return f"{c}::text"  # the driver must not parse numeric, json, floats (NaN) or dates


def pg_size_expr(col: Column) -> str:
    """Return the SQL for the size of ``col``'s value as read (0 for NULL), without
    detoasting large text or bytea values (octet_length reads their stored length)."""
    c = quote_ident(col.name)
    if col.kind == "text":
        return f"coalesce(octet_length({c}), 0)"
    if col.kind == "bytea":
        return f"coalesce(2 * octet_length({c}), 0)"  # read as hex
    if col.kind in ("integer", "boolean"):
        return "8"
    return f"coalesce(octet_length(({pg_select_expr(col)})::text), 0)"


def pg_literal_expr(col: Column) -> str:
    """Return the SQL that turns a replica-form value (a %s parameter) back into ``col``'s type."""
    if col.kind == "bytea":
        return "decode(%s, 'hex')"
    if col.kind == "boolean":
        return "(%s)::int::boolean"
    return f"(%s)::{col.sql_type}"


def generic_kind(type_name: str) -> str:
    """Return our kind for a column of a non-PostgreSQL source (the SQLite demo)."""
    t = type_name.upper()
    for marker, kind in (
        ("INT", "integer"),
        ("BOOL", "boolean"),
        ("TIMESTAMPTZ", "timestamptz"),
        ("TIMESTAMP", "timestamp"),
        ("DATETIME", "timestamp"),
        ("DATE", "date"),
        ("NUMERIC", "numeric"),
        ("DECIMAL", "numeric"),
        ("REAL", "float"),
        ("FLOA", "float"),
        ("DOUB", "float"),
        ("JSON", "json"),
        ("BLOB", "bytea"),
        ("UUID", "uuid"),
    ):
        if marker in t:
            return kind
    return "text"


def shift_iso(value: str, seconds: float) -> str:
    """Return an ISO-8601 timestamp text moved by ``seconds``, in the same form."""
    from datetime import datetime

    dt = datetime.fromisoformat(value.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    out = dt.isoformat(timespec="microseconds")
    return out.replace("+00:00", "Z")
