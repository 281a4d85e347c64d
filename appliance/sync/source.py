"""The source database: one read-only, bounded session; introspection; streaming reads.

Production is sacred (BRIEF 2): every session runs with default_transaction_read_only,
a statement timeout, an idle-in-transaction timeout and application_name=appliance, and
the appliance holds one connection at a time. Reads are keyset pages (each a short
statement, so a hot standby never cancels a long snapshot) of plain SELECTs, with every
conversion done in the SELECT; psycopg2 decodes the text in C, which measured cheaper
than COPY parsed in Python (bench_sync).
"""

from __future__ import annotations

import codecs
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NoReturn, cast

import psycopg2.extensions
import sqlalchemy as sa
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import NullPool

from ..config import TableSettings
from ..errors import LoginError, QueryError, SourceError, SourceSchemaError
from ..schema.shape import Column, Shape
from .statement import one_statement
from .typemap import generic_kind, pg_kind, pg_literal_expr, pg_select_expr, quote_ident, shift_iso

Row = list[Any]


def _legacy_text(name: str) -> codecs.CodecInfo | None:
    """The codec of a SQL_ASCII source's text: UTF-8 where it is, else Latin-1, losing nothing.

    PostgreSQL stores any bytes in a SQL_ASCII database and psycopg2 decodes them as ASCII:
    one "café" in a name or a value raised UnicodeDecodeError. Most such databases hold UTF-8;
    the rest is read byte for byte (every byte is a Latin-1 character, so nothing is lost).
    """
    if name != "appliance_sql_ascii":
        return None

    def decode(data: Any, errors: str = "strict") -> tuple[str, int]:
        raw = bytes(data)
        try:
            return raw.decode("utf-8"), len(raw)
        except UnicodeDecodeError:
            return raw.decode("latin-1"), len(raw)

    def encode(text: Any, errors: str = "strict") -> tuple[bytes, int]:
        return text.encode("utf-8"), len(text)

    return codecs.CodecInfo(encode, decode, name=name)


codecs.register(_legacy_text)
# psycopg2's documented map from PostgreSQL's encoding names to Python codecs.
psycopg2.extensions.encodings["SQL_ASCII"] = psycopg2.extensions.encodings["SQLASCII"] = "appliance_sql_ascii"

READ_ONLY = "SET TRANSACTION READ ONLY; "  # before every statement: see Source._send
_SETTING = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_STREAM = "appliance_rows"  # the server-side cursor of Source.stream
SAMPLE_VALUE_BYTES = 256 * 1024  # a sampled value (JSON keys for the contract) larger than this is left out


@dataclass
class Page:
    """One keyset page request."""

    after: Sequence[str] | None = None  # order-column values of the last row read
    lower_bound: str | None = None  # cursor >= lower_bound - lookback (first page of a pass)
    upper_bound: str | None = None  # cursor <= upper_bound: a pass never chases a busy writer
    lookback: float = 0.0
    limit: int = 20000
    by_cursor: bool = False
    filtered: bool = True  # apply `where` at the source; else return a keep flag
    null_cursor: str | None = None  # read only the rows whose cursor column is NULL


def classify_connect_error(exc: Exception, where: str) -> SourceError | SourceSchemaError:
    """Return the error for a failed connect or query: a SourceError (subclass), or a
    SourceSchemaError when the query itself was wrong (the source is fine)."""
    orig = getattr(exc, "orig", exc)
    text = (str(orig).strip().splitlines() or [repr(orig)])[0]
    low = text.lower()
    code = getattr(orig, "pgcode", None) or ""
    if (
        code in ("28P01", "28000")
        or "password authentication failed" in low
        or ("no password supplied" in low)
    ):
        return LoginError(
            f"the database refused the login ({text}). Check source.user and the "
            f"password in source.password_file / source.password_env."
        )
    if code == "3D000" or ("does not exist" in low and "database" in low and not code):
        return LoginError(f"{text}. Check source.database.")
    if code == "25006":
        return QueryError(f"the source refused a write, as it must: {text}")
    if code == "57014":
        return QueryError(
            f"a query hit source.statement_timeout ({text}). Raise "
            f"source.statement_timeout or lower sync.batch_size."
        )
    if code[:2] in ("42", "22", "0A", "2B"):
        return SourceSchemaError(
            f"the source rejected a query: {text}. Check the table's "
            f"name, columns and `where` filter in the config."
        )
    if code:  # the server answered: the link works, this query failed
        return QueryError(f"the source failed a query ({code}): {text}")
    return SourceError(
        f"database unreachable at {where}: {text}. Check source.host/source.port and that the database is up."
    )


def pg_session_options(statement_timeout: float) -> str:
    """Return libpq ``options`` that make every session read-only and bounded."""
    ms = int(statement_timeout * 1000)
    opts = {
        "default_transaction_read_only": "on",
        "statement_timeout": str(ms),
        "idle_in_transaction_session_timeout": str(max(ms, 60000)),
        "lock_timeout": "5000",
        "TimeZone": "UTC",
        "DateStyle": "ISO",
        "IntervalStyle": "iso_8601",
        "extra_float_digits": "3",
        "standard_conforming_strings": "on",  # the quoting rule statement.py scans by
    }
    return " ".join(f"-c {k}={v}" for k, v in opts.items())


_DESCRIBE_PG = """
SELECT n.nspname || '.' || c.relname, c.relkind, a.attname,
       format_type(a.atttypid, a.atttypmod),
       coalesce(bt.typname, t.typname), coalesce(bt.typtype, t.typtype),
       coalesce(bt.typcategory, t.typcategory), a.attnotnull, a.attgenerated <> '',
       (SELECT array_agg(e.enumlabel::text ORDER BY e.enumsortorder) FROM pg_enum e
         WHERE e.enumtypid = coalesce(bt.oid, t.oid)),
       coalesce((SELECT array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum)
                   FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary), 0),
       a.attnum
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
WHERE n.nspname || '.' || c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT n.nspname || '.' || c.relname, c.relkind, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
       NULL, 0
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY(%s) AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY 1, 12
"""


class Source:
    """A read-only connection to the source database (PostgreSQL, or any SQLAlchemy URL)."""

    def __init__(
        self,
        url: sa.URL | str,
        statement_timeout: float = 60.0,
        connect_timeout: float = 5.0,
        where: str = "",
    ) -> None:
        url = sa.make_url(url)
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg2")  # the driver we ship
        self.where = where or f"{url.host or url.database}:{url.port or ''}".rstrip(":")
        self.port = url.port
        self.is_postgres = url.get_backend_name() == "postgresql"
        # Set again in every statement's own transaction: the session's value is only a
        # default, which set_config(..., false) in any earlier statement could have changed.
        self._bounded = f"SET LOCAL statement_timeout = {int(statement_timeout * 1000)}; "
        args: dict[str, Any] = {}
        if self.is_postgres:
            args = {
                "connect_timeout": max(1, int(connect_timeout)),
                "application_name": "appliance",
                "options": pg_session_options(statement_timeout),
                "keepalives": 1,
                "keepalives_idle": 5,
                "keepalives_interval": 2,
                "keepalives_count": 3,
            }
        # NullPool: one connection at a time, opened by us and closed by us.
        self.engine = sa.create_engine(url, poolclass=NullPool, connect_args=args, hide_parameters=True)
        self._conn: DBAPIConnection | None = None  # raw DBAPI connection
        self._sa_conn: sa.Connection | None = None
        # Statements sent (each one round trip): the pass summary and /metrics show them,
        # because over a distant link round trips, not rows, set the pace.
        self.statements = 0
        self.round_trip = 0.0  # seconds, measured by the last probe

    @property
    def connected(self) -> bool:
        """Return True while the session is open (a failed statement closes it)."""
        return self._sa_conn is not None

    # -- connection ----------------------------------------------------------------------
    def connect(self) -> None:
        """Open the single session (idempotent); raise LoginError or SourceError."""
        if self._sa_conn is not None:
            return
        try:
            self._sa_conn = self.engine.connect()
            conn = self._conn = self._sa_conn.connection.dbapi_connection
            assert conn is not None  # None only once SQLAlchemy invalidated it
            if self.is_postgres:
                # Autocommit: each statement is its own transaction. Without it psycopg2
                # sends BEGIN before and we send COMMIT after every statement: three round
                # trips each, which over a distant link cost more than the rows. Every
                # statement still runs read-only, whatever the session's default says
                # (see READ_ONLY).
                conn.set_session(readonly=True, autocommit=True)
            else:
                self._sa_conn.exec_driver_sql("PRAGMA query_only = ON")
                self._sa_conn.commit()
        except sa.exc.DBAPIError as e:
            self.close()
            raise classify_connect_error(e, self.where) from None

    def close(self) -> None:
        """Close the session; safe to call twice."""
        conn, self._sa_conn, self._conn = self._sa_conn, None, None
        if conn is not None:
            try:
                conn.invalidate() if self.is_postgres else conn.close()
            except Exception:  # noqa: BLE001 - a dead connection may fail to close; it is gone
                pass

    def __enter__(self) -> Source:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
        self.engine.dispose()

    def _cursor(self) -> tuple[Any, Any]:
        """Return (the one connection, a cursor of it), counting the statement about to be sent."""
        self.connect()
        conn = self._conn
        assert conn is not None  # connect() opened it or raised
        self.statements += 1
        return conn, conn.cursor()

    def _run(self, sql: str, params: Any = None, local: dict[str, str] | None = None) -> list[tuple]:
        conn, cur = self._cursor()
        try:
            self._send(cur, sql, params, local)
            # psycopg2 and sqlite3 return a list of tuples; the DBAPI protocol says Sequence.
            rows = cast(list[tuple], cur.fetchall()) if cur.description else []
            conn.commit()  # never leave a transaction idle on production
            return rows
        except Exception as e:
            self._fail(e)
        finally:
            cur.close()

    def _send(self, cur: Any, sql: str, params: Any, local: dict[str, str] | None = None) -> None:
        """Send one statement, checked to be exactly one, made read-only (PostgreSQL).

        The check runs on the text as the server will read it, parameters included
        (statement.py says why psycopg2 needs it). In autocommit a statement's transaction
        takes ``default_transaction_read_only``, which any statement of the session could
        turn off; ``SET TRANSACTION READ ONLY`` in the same query string (one implicit
        transaction, one round trip) holds anyway. ``local`` settings (planner switches,
        never read-write) apply to that transaction alone.
        """
        if not self.is_postgres:
            cur.execute(one_statement(sql), params or ())  # sqlite3 binds parameters itself
            return
        text = cur.mogrify(sql, params or ()).decode("utf-8")
        prefix = (
            READ_ONLY
            + self._bounded
            + "".join(f"SET LOCAL {_setting(k)} = {_setting(v)}; " for k, v in (local or {}).items())
        )
        cur.execute(prefix + one_statement(text))  # no parameters: no second formatting

    def _fail(self, e: Exception) -> NoReturn:
        self.close()  # a failed statement aborts the transaction: start clean next time
        if isinstance(e, sa.exc.DBAPIError) or type(e).__module__.split(".")[0] in ("psycopg2", "sqlite3"):
            raise classify_connect_error(e, self.where) from None
        raise e

    def probe(self) -> None:
        """Run SELECT 1; raise SourceError when the database does not answer.

        Its time is the link's round trip, as the copy sizes its pages by it.
        """
        t0 = time.monotonic()
        self._run("SELECT 1")
        self.round_trip = time.monotonic() - t0

    def execute(self, sql: str, params: Any = None, local: dict[str, str] | None = None) -> list[tuple]:
        """Run one statement in the read-only session and return its rows; ``local``:
        settings for its transaction only (PostgreSQL's SET LOCAL), e.g. {"jit": "off"}."""
        return self._run(sql, params, local)

    def clocks(self) -> tuple[float | None, float | None]:
        """Return (replay lag, the source's clock minus ours), in seconds, in one statement.

        The Pi has no real-time clock: comparing it with the source's says whether either
        clock is wrong (ours is read halfway through the round trip, so the error is at
        most half of it).
        """
        if not self.is_postgres:
            return None, None
        before = time.time()
        rows = self._run(
            "SELECT CASE WHEN pg_is_in_recovery() THEN "
            "extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END, "
            "extract(epoch FROM clock_timestamp())"
        )
        ours = (before + time.time()) / 2
        lag, theirs = rows[0] if rows else (None, None)
        return (
            float(lag) if lag is not None else None,
            float(theirs) - ours if theirs is not None else None,
        )

    # -- introspection -------------------------------------------------------------------
    def describe(self, names: Sequence[str]) -> dict[str, Shape]:
        """Return the Shape of every named table that exists (one catalog query)."""
        return self.describe_all(names)[0]

    def describe_all(
        self, names: Sequence[str], schemas: Sequence[str] = ()
    ) -> tuple[dict[str, Shape], list[str]]:
        """Return the named tables' Shapes and every table in ``schemas``, in one query."""
        if not self.is_postgres:
            return self._describe_generic(names), self._tables_generic()
        shapes: dict[str, Shape] = {}
        pk: dict[str, list[tuple[int, str]]] = {}
        tables: list[str] = []
        for (
            name,
            relkind,
            col,
            sql_type,
            typname,
            typtype,
            cat,
            notnull,
            generated,
            labels,
            pkpos,
            _,
        ) in self._run(_DESCRIBE_PG, (list(names), list(schemas))):
            if col is None:
                tables.append(name)
                continue
            shape = shapes.setdefault(name, Shape(name, [], [], relkind))
            shape.columns.append(
                Column(
                    col,
                    sql_type,
                    pg_kind(typname, typtype, cat),
                    not notnull,
                    bool(generated),
                    tuple(labels or ()),
                )
            )
            if pkpos:
                pk.setdefault(name, []).append((pkpos, col))
        for name, cols in pk.items():
            shapes[name].primary_key = [c for _, c in sorted(cols)]
        return shapes, tables

    def _tables_generic(self) -> list[str]:
        self.connect()
        return [f"public.{t}" for t in sa.inspect(self._sa_conn).get_table_names()]

    def _describe_generic(self, names: Sequence[str]) -> dict[str, Shape]:
        self.connect()
        insp = sa.inspect(self._sa_conn)
        shapes = {}
        for name in names:
            table = name.split(".", 1)[1]
            if not insp.has_table(table):
                continue
            cols = [
                Column(c["name"], str(c["type"]), generic_kind(str(c["type"])), bool(c["nullable"]))
                for c in insp.get_columns(table)
            ]
            pk = insp.get_pk_constraint(table).get("constrained_columns") or []
            shapes[name] = Shape(name, cols, list(pk))
        return shapes

    # -- reads ---------------------------------------------------------------------------
    def read_page(
        self,
        table: TableSettings,
        columns: list[Column],
        order: list[Column],
        page: Page,
        flags: dict[str, str],
    ) -> list[Row]:
        """Return one keyset page: the columns' values, then one 0/1 value per flag."""
        sql, params = self._page_sql(table, columns, order, page, flags)
        if not self.is_postgres:
            return self._read_generic(sql, params, columns, len(flags))
        # A plain query per page: psycopg2 decodes the rows in C (values arrive as text,
        # NULL as None), and each page is one short statement on the source.
        rows = self._run(sql, params)
        return _decode_blobs(rows, columns)

    def send_page(
        self,
        table: TableSettings,
        columns: list[Column],
        order: list[Column],
        page: Page,
        flags: dict[str, str],
    ) -> Pending:
        """Run one keyset page's statement; return it with its rows not yet converted.

        The last row (the next page's keyset bound) and a small sample are converted at
        once; the rest later by ``Pending.chunks``, in the caller's thread, while this
        session already runs the next page's statement: psycopg2 keeps each cursor's
        result on its own, so turning a page into Python rows no longer keeps the link
        idle (issue 15).
        """
        if not self.is_postgres:
            rows = self.read_page(table, columns, order, page, flags)
            return Pending(None, rows, columns, page.limit)
        sql, params = self._page_sql(table, columns, order, page, flags)
        _, cur = self._cursor()
        try:
            self._send(cur, sql, params)
            return Pending(cur, None, columns, page.limit)
        except Exception as e:
            cur.close()
            self._fail(e)

    def stream(
        self, table: TableSettings, columns: list[Column], flags: dict[str, str], size: int
    ) -> Iterator[list[Row]]:
        """Yield every row the table's filter selects, ``size`` rows at a time.

        For a table without a key there is no keyset to page by (its rows may repeat and
        hold NULLs), so one statement reads it, through a server-side cursor: memory holds
        one batch, never the whole table (a keyless million rows took 393 MB in one go).
        The cursor lives in one read-only transaction that ends when the rows do.
        """
        # No ORDER BY: the refresh swaps the whole table in, so any order will do.
        sql, params = self._page_sql(table, columns, [], Page(limit=0, filtered=True), flags)
        if not self.is_postgres:
            _, cur = self._cursor()
            try:
                cur.execute(one_statement(sql), params)
                while batch := cur.fetchmany(size):
                    yield self._read_generic_rows(batch, columns)
            except Exception as e:
                self._fail(e)
            finally:
                cur.close()
            return
        _, cur = self._cursor()
        try:
            text = one_statement(cur.mogrify(sql, params or ()).decode("utf-8"))
            # One query string, one round trip: the explicit transaction outlives it (the
            # session is in autocommit) and holds the cursor until COMMIT below.
            cur.execute(f"BEGIN READ ONLY; {self._bounded}DECLARE {_STREAM} NO SCROLL CURSOR FOR {text}")
            while True:
                self.statements += 1
                cur.execute(f"FETCH FORWARD {int(size)} FROM {_STREAM}")
                rows = cast(list[tuple], cur.fetchall())
                if rows:
                    yield _decode_blobs(rows, columns)
                if len(rows) < size:
                    break
            self.statements += 1
            cur.execute("COMMIT")
        except GeneratorExit:  # the caller stopped early: end the transaction, keep the session
            try:
                cur.execute("ROLLBACK")
            except Exception:  # noqa: BLE001 - a session that cannot roll back is closed instead
                self.close()
            raise
        except Exception as e:
            self._fail(e)
        finally:
            cur.close()

    def max_cursor(self, table: TableSettings, cursor: Column) -> str | None:
        """Return the largest cursor value at the source, in replica form."""
        expr = pg_select_expr(cursor) if self.is_postgres else quote_ident(cursor.name)
        c = quote_ident(cursor.name)
        # Qualified: a bare name in ORDER BY would sort by the output column (its text form).
        rows = self._run(
            f"SELECT {expr} FROM {self._ident(table)} WHERE {c} IS NOT NULL "
            f"ORDER BY {self._ident(table)}.{c} DESC LIMIT 1"
        )
        return _generic_value(rows[0][0], cursor) if rows else None

    def count(self, table: TableSettings) -> int:
        """Return the number of rows the table's filter selects at the source."""
        where = f" WHERE {self._where(table)}" if table.where else ""
        ident = self._ident(table)
        return int(self._run(f"SELECT count(*) FROM {ident}{where}")[0][0])

    def sample(self, table: TableSettings, column: Column, limit: int = 500) -> list:
        """Return up to ``limit`` non-NULL values of a column, in replica form, each of at
        most SAMPLE_VALUE_BYTES: a column whose values run to megabytes would otherwise
        bring hundreds of them into memory at once (the sync's pages are bounded by bytes;
        a sample must be too). Larger values are left out of the sample, not cut."""
        expr = pg_select_expr(column) if self.is_postgres else quote_ident(column.name)
        size = f"octet_length({expr})" if self.is_postgres else f"length(CAST({expr} AS BLOB))"
        rows = self._run(
            f"SELECT {expr} FROM {self._ident(table)} WHERE {quote_ident(column.name)} IS NOT NULL "
            f"AND {size} <= {SAMPLE_VALUE_BYTES} LIMIT {int(limit)}"
        )
        return [_generic_value(r[0], column) for r in rows]

    def distinct_values(self, ref: str, limit: int = 1000) -> set[str]:
        """Return the distinct values of "schema.table.column" (a small lookup table)."""
        schema, table, column = ref.split(".")
        ident = f"{quote_ident(schema)}.{quote_ident(table)}" if self.is_postgres else quote_ident(table)
        col = quote_ident(column)
        cast = f"{col}::text" if self.is_postgres else col
        rows = self._run(f"SELECT DISTINCT {cast} FROM {ident} WHERE {col} IS NOT NULL LIMIT {int(limit)}")
        return {str(r[0]) for r in rows}

    def _ident(self, table: TableSettings) -> str:
        if self.is_postgres:
            return f"{quote_ident(table.schema)}.{quote_ident(table.table)}"
        return quote_ident(table.table)

    def _where(self, table: TableSettings) -> str:
        """Return the table's filter, with % doubled for psycopg2 (which always formats)."""
        return table.where.replace("%", "%%") if self.is_postgres else table.where

    def _param(self, params: list, value: Any, col: Column) -> str:
        # a bytea key arrives as bytes; its literal expression decodes hex
        params.append(value.hex() if self.is_postgres and isinstance(value, bytes) else value)
        if self.is_postgres:
            return pg_literal_expr(col)
        return "?"

    def _page_sql(
        self,
        table: TableSettings,
        columns: list[Column],
        order: list[Column],
        page: Page,
        flags: dict[str, str],
    ) -> tuple[str, list]:
        pg = self.is_postgres
        select = [pg_select_expr(c) if pg else quote_ident(c.name) for c in columns]
        flag_exprs = dict(flags)
        if table.where and not page.filtered:
            flag_exprs["_keep"] = f"coalesce(({self._where(table)}), false)"
        for expr in flag_exprs.values():
            select.append(f"(CASE WHEN {expr} THEN 1 ELSE 0 END)")
        conds: list[str] = []
        params: list[Any] = []
        if table.where and page.filtered:
            conds.append(f"({self._where(table)})")
        if page.null_cursor:
            conds.append(f"{quote_ident(page.null_cursor)} IS NULL")
        cursor = order[0] if page.by_cursor else None
        if cursor is not None:
            conds.append(f"{quote_ident(cursor.name)} IS NOT NULL")
            if page.lower_bound is not None and page.after is None:
                shift = page.lookback if cursor.kind in ("timestamptz", "timestamp") else 0
                bound = page.lower_bound if pg or not shift else shift_iso(page.lower_bound, -shift)
                lit = self._param(params, bound, cursor)
                if shift and pg:
                    lit = f"{lit} - interval '{float(shift)} seconds'"
                conds.append(f"{quote_ident(cursor.name)} >= {lit}")
            if page.upper_bound is not None:
                lit = self._param(params, page.upper_bound, cursor)
                conds.append(f"{quote_ident(cursor.name)} <= {lit}")
        if page.after is not None:
            lhs = ", ".join(quote_ident(c.name) for c in order)
            rhs = ", ".join(self._param(params, v, c) for v, c in zip(page.after, order, strict=True))
            conds.append(f"({lhs}) > ({rhs})")
        sql = f"SELECT {', '.join(select)} FROM {self._ident(table)}"
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        # Qualified: a bare "k" would sort by the output column "k"::text (numeric in text
        # order) while the keyset condition compares numerically: rows lost or duplicated.
        if order:
            sql += " ORDER BY " + ", ".join(f"{self._ident(table)}.{quote_ident(c.name)}" for c in order)
        if page.limit:
            sql += f" LIMIT {int(page.limit)}"
        return sql, params

    def _read_generic(self, sql: str, params: list, columns: list[Column], nflags: int) -> list[Row]:
        return self._read_generic_rows(self.execute(sql, params), columns)

    @staticmethod
    def _read_generic_rows(rows: Sequence[Sequence[Any]], columns: list[Column]) -> list[Row]:
        return [
            [_generic_value(v, c) for v, c in zip(row, columns, strict=False)]
            + [int(f) for f in row[len(columns) :]]
            for row in rows
        ]

    def read_keys(
        self,
        table: TableSettings,
        columns: list[Column],
        key: list[Column],
        keys: Sequence[Sequence[Any]],
        flags: dict[str, str],
    ) -> list[Row]:
        """Return the rows with these keys (replica form): the columns, then one 0/1 value
        per flag and a last one saying whether the row matches ``where`` (when set)."""
        pg = self.is_postgres
        select = [pg_select_expr(c) if pg else quote_ident(c.name) for c in columns]
        exprs = list(flags.values())
        if table.where:
            exprs.append(f"coalesce(({self._where(table)}), false)")
        select += [f"(CASE WHEN {e} THEN 1 ELSE 0 END)" for e in exprs]
        params: list = []
        one = ", ".join(pg_literal_expr(c) if pg else "?" for c in key)
        for k in keys:
            params += [v.hex() if pg and isinstance(v, bytes) else v for v in k]
        lhs = ", ".join(quote_ident(c.name) for c in key)
        tuples = ", ".join(f"({one})" for _ in keys)
        sql = f"SELECT {', '.join(select)} FROM {self._ident(table)} WHERE ({lhs}) IN ({tuples})"
        if not pg:
            return self._read_generic(sql, params, columns, len(exprs))
        rows = self._run(sql, params)
        return _decode_blobs(rows, columns)


class Pending:
    """One page whose statement has run: its size, last row and a sample at once, its rows
    batch by batch when asked (each psycopg2 cursor holds its own result, so the session
    is free for the next statement meanwhile)."""

    SAMPLE = 8  # rows converted early, for pacing's estimate of a row's size

    def __init__(self, cur: Any, rows: list[Row] | None, columns: list[Column], limit: int) -> None:
        self._cur, self._rows, self.columns, self.limit = cur, rows, columns, limit
        if rows is not None:
            self.count = len(rows)
            self.last = rows[-1] if rows else None
            self.sample: list[Row] = rows[:: max(1, len(rows) // self.SAMPLE)]
            return
        self.count = cur.rowcount
        self.sample = []
        for i in range(0, self.count, max(1, self.count // self.SAMPLE)):
            cur.scroll(i, mode="absolute")
            self.sample.append(cur.fetchone())
        if self.count:
            cur.scroll(self.count - 1, mode="absolute")
            self.sample.append(cur.fetchone())
            cur.scroll(0, mode="absolute")  # chunks() reads from the first
        self.sample = _decode_blobs(self.sample, columns)
        self.last = self.sample[-1] if self.count else None

    def chunks(self, size: int) -> Iterator[list[Row]]:
        """Yield the page's rows (replica form) in lists of at most ``size``; once.
        An empty page yields one empty list."""
        size = max(1, size)
        if self._rows is not None:
            rows, self._rows = self._rows, []
            for i in range(0, max(1, len(rows)), size):
                yield rows[i : i + size]
            return
        try:
            if not self.count:
                yield []
            while True:
                batch = cast(list, self._cur.fetchmany(size))
                if not batch:
                    return
                yield _decode_blobs(batch, self.columns)
        finally:
            self._cur.close()


def _setting(word: str) -> str:
    """Return a SET LOCAL name or value: a plain word, never a way into the statement."""
    if not _SETTING.fullmatch(word) or word.lower().startswith("transaction"):
        raise ValueError(f"not a setting the appliance sends: {word!r}")
    return word


def _decode_blobs(rows: list, columns: list[Column]) -> list:
    """Return rows with bytea values (read as hex text) turned into bytes."""
    blobs = [i for i, c in enumerate(columns) if c.kind == "bytea"]
    if not blobs:
        return rows
    rows = [list(r) for r in rows]
    for row in rows:
        for i in blobs:
            if row[i] is not None:
                row[i] = bytes.fromhex(row[i])
    return rows


def _generic_value(value: Any, col: Column) -> Any:
    """Return a value from a non-PostgreSQL source in the replica's form."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return str(value)
    if col.kind == "json" and not isinstance(value, str):
        return json.dumps(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
