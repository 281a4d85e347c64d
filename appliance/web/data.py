"""The data API (BRIEF 4.13 and 9): the replica's tables as JSON and streamed CSV, and
read-only SQL. Closed by default (``data_access``); never imports the sync.

    GET /api/data/                       the replicated tables: columns, rows, last sync, lag, state
    GET /api/data/<table>.json           {"rows": [...], "next": URL or null}; filters, _sort, _size
    GET /api/data/<table>.csv            the whole table after filters (streamed), or one page with _size
    GET /api/data/sql.json?sql=SELECT..  read-only SQL with a time limit and a row limit (also .csv)

``<table>`` is the replica name. Columns in ``exclude_columns`` are not in the replica at
all; ``mask_columns`` hold only their keyed hashes there, and that is what is served.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from flask import Blueprint, Response, request, url_for

from ..config import TableSettings
from . import data_query as dq
from .data_access import refusal
from .data_export import eligible, export_csv
from .data_fast import TABLE_TIME_LIMIT, json_page, with_query
from .data_rows import BATCH, csv_header, csv_stream, dumps, json_objects
from .replica_read import (
    QueryRefused,
    QueryTimeout,
    ReadOnly,
    ReplicaMissing,
    pooled,
    replica_file,
    replica_missing,
)
from .site import site

bp = Blueprint("data", __name__, url_prefix="/api/data")

SQL_TIME_LIMIT = 2.0  # seconds inside SQLite for one SQL request
SQL_MAX_ROWS = {"json": 1000, "csv": 100_000}


@bp.before_request
def _guard() -> Response | None:
    s = site()
    return refusal(s.password, s.config.web.data_api_open, request, throttle=s.throttle)


def _json(doc: Any, code: int = 200) -> Response:
    return Response(dumps(doc) + "\n", code, mimetype="application/json")


def _error(message: str, code: int) -> Response:
    return _json({"error": message}, code)


def served_tables() -> dict[str, TableSettings]:
    """Return the configured tables by replica name: the only user tables served by name."""
    return {t.replica_name: t for t in site().config.tables}


def open_replica(user: bool = False, time_limit: float | None = None, pool: bool = False) -> ReadOnly:
    """Return a read-only connection to the replica (this thread's own with ``pool``)."""
    path = replica_file(site().config.replica_url)
    if pool:
        if not path.exists():
            raise replica_missing(path)
        return pooled(path, time_limit)
    return ReadOnly(path, user=user, time_limit=time_limit)


@bp.get("/")
def index() -> Response:
    """List the replicated tables with their columns, row counts, last sync, lag and state."""
    s = site()
    status = {t["name"]: t for t in s.snapshot().status["tables"]}
    out = []
    try:
        ro: ReadOnly | None = open_replica()
    except ReplicaMissing:
        ro = None
    try:
        for name, t in served_tables().items():
            info = dq.table_info(ro, name) if ro else None
            entry = status.get(t.name, {})
            out.append(
                {
                    "name": name,
                    "source": t.name,
                    "rows": entry.get("rows"),
                    "last_sync": entry.get("last_sync"),
                    "lag_seconds": entry.get("lag_seconds"),
                    "state": entry.get("state"),
                    "synced": info is not None,
                    "columns": [
                        {
                            "name": c.name,
                            "type": c.type,
                            "source_type": c.source_type,
                            "masked": c.name in t.mask_columns,
                        }
                        for c in (info.columns if info else [])
                    ],
                    "json": url_for(".rows", name=f"{name}.json", _external=True),
                    "csv": url_for(".rows", name=f"{name}.csv", _external=True),
                }
            )
    finally:
        if ro:
            ro.close()
    return _json({"tables": out, "sql": url_for(".rows", name="sql.json", _external=True)})


@bp.get("/<path:name>")
def rows(name: str) -> Response:
    """One table's rows: JSON pages or streamed CSV, with filters and sorting."""
    table, _, fmt = name.rpartition(".")
    if table == "sql" and fmt in ("json", "csv"):
        return sql(fmt)
    if fmt not in ("json", "csv") or table not in served_tables():
        return _error(
            f"no table {name!r}: see {url_for('.index', _external=True)} for the tables served", 404
        )
    try:
        # JSON pages end within the request: they use the thread's own connection.
        ro = open_replica(time_limit=TABLE_TIME_LIMIT, pool=True) if fmt == "json" else open_replica()
    except ReplicaMissing as e:
        return _error(str(e), 503)
    try:
        info = dq.table_info(ro, table)
        if info is None:
            ro.close()
            return _error(f"{table!r} has not been synced yet; try again after the agent's first pass", 503)
        q = dq.parse(
            info, request.args, request.args.to_dict(flat=False), dq.DEFAULT_SIZE if fmt == "json" else None
        )
        if fmt == "json":
            with ro:
                here = f"{request.root_url.rstrip('/')}{request.path}"
                body = json_page(ro, q, request.args.to_dict(flat=False), here)
                return Response(body, mimetype="application/json")
        return _csv(ro, q, table)
    except dq.BadRequest as e:
        ro.close()
        return _error(str(e), 400)
    except QueryTimeout as e:
        ro.close()
        return _error(str(e), 400)
    except BaseException:
        ro.close()
        raise


def _next_url(q: dq.Query, table: str, fmt: str, last: tuple) -> str:
    """Return the URL of the page after the row ``last``."""
    args: dict[str, Any] = {k: v for k, v in request.args.to_dict(flat=False).items() if k != "_next"}
    args["_next"] = [dq.token(dq.order_values(q, last))]
    # Built from the request's own root: url_for(_external=True) cost a tenth of the page.
    return with_query(f"{request.root_url.rstrip('/')}{request.path}", args)


def _csv(ro: ReadOnly, q: dq.Query, table: str) -> Response:
    names = [c.name for c in q.table.columns]
    blobs = [i for i, c in enumerate(q.table.columns) if c.type.upper() in ("BLOB", "")]
    if eligible(q):  # the whole table in key order: in worker processes when large
        return Response(_closing(csv_header(names), export_csv(ro, q, blobs), ro.close), mimetype="text/csv")
    limit = q.size + 1 if q.size else None
    sql, params = dq.select(q, limit)
    cursor = ro.execute(sql, params)
    first = ro.fetch(cursor, min(BATCH, limit or BATCH))
    headers = {}
    if q.size:
        # One page: the next one is named in a Link header (a CSV has no room for it).
        if len(first) > q.size:
            headers["Link"] = f'<{_next_url(q, table, "csv", first[q.size - 1])}>; rel="next"'
        body = csv_stream(names, first[: q.size], list, ro.close, blobs)
    else:
        body = csv_stream(names, first, lambda: ro.fetch(cursor, BATCH), ro.close, blobs)
    return Response(body, mimetype="text/csv", headers=headers)


def _closing(head: bytes, rows: Iterator[bytes], close: Callable[[], None]) -> Iterator[bytes]:
    """Yield ``head`` and ``rows``; close the connection at the end or when the client goes."""
    try:
        yield head
        yield from rows
    finally:
        rows.close()  # type: ignore[attr-defined]  # a generator: stops its workers
        close()


@bp.get("/sql", defaults={"fmt": "json"})
def sql(fmt: str) -> Response:
    """Run one read-only statement; it ends at its time limit or its row limit."""
    text = request.args.get("sql", "").strip()
    if not text:
        return _error("add ?sql=SELECT ... (one read-only statement)", 400)
    cap = SQL_MAX_ROWS[fmt]
    try:
        ro = open_replica(user=True, time_limit=SQL_TIME_LIMIT)
    except ReplicaMissing as e:
        return _error(str(e), 503)
    try:
        cursor = ro.execute(text)
        names = [d[0] for d in cursor.description or ()]
        first = ro.fetch(cursor, min(cap + 1, BATCH + 1) if fmt == "csv" else cap + 1)
    except (QueryRefused, QueryTimeout) as e:
        ro.close()
        return _error(str(e), 400)
    except (sqlite3.Error, ValueError) as e:  # a syntax error, two statements, a bad parameter
        ro.close()
        return _error(f"the query failed: {e}", 400)
    if fmt == "json":
        ro.close()
        # What _json writes for {"columns", "rows" (objects), "truncated", "next": None}.
        rows = json_objects(names, first[:cap])
        truncated = "true" if len(first) > cap else "false"
        body = f'{{"columns": {dumps(names)}, "rows": {rows}, "truncated": {truncated}, "next": null}}\n'
        return Response(body, mimetype="application/json")
    return Response(
        csv_stream(names, first[:cap], _capped(ro, cursor, cap, len(first)), ro.close), mimetype="text/csv"
    )


def _capped(ro: ReadOnly, cursor: sqlite3.Cursor, cap: int, seen: int):
    """Return a ``more`` for csv_stream that stops at ``cap`` rows and at the time limit."""
    count = [seen]

    def more() -> list[tuple]:
        left = cap - count[0]
        if left <= 0:
            return []
        try:
            batch = ro.fetch(cursor, min(BATCH, left))
        except (QueryTimeout, sqlite3.Error):
            return []  # the response has started: end it here (the limit ended the query)
        count[0] += len(batch)
        return batch

    return more
