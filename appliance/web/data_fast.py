"""Answer the data API's JSON pages without Flask's dispatch (the most polled data route).

A page of 100 rows cost 0.7 ms in the process, and Flask's request context, routing and
hooks were 0.3 ms of it; at 50 connections on two cores that time set the p99
(bench_api). ``DataPath`` answers ``GET /api/data/<table>.json`` when the request may
read and the page can be served; anything else (a refusal, a bad filter, a missing
replica, every other route) goes on to Flask, which gives the full answer. A page asked
again while the replica is unchanged is answered from this thread's rendered bytes
(``data_cache``), after the same access check.

Pages that must be read are read one at a time (``OnePage``). Python's sqlite3 lets go
of the GIL at every row it steps to; with other worker threads waiting for it, each row
became a hand-over: 270 to 310 context switches and 3.0 to 3.6 ms of CPU a page of 100
rows in the server, against 0.6 ms in one thread. With the others asleep on a lock
instead: 50 to 55 switches, 2.1 to 2.5 ms, and 1.25 to 1.5 times the requests/s
(bench_api's uncached page, the two interleaved in one run; the p99 moved less).
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request

from ..errors import ApplianceError
from . import data_query as dq
from .data_access import OPEN, TOKEN, posture, presented
from .data_cache import page_key, pages_of
from .data_rows import dumps, json_objects
from .replica_read import ReadOnly, pooled, replica_file
from .site import Site

PREFIX = "/api/data/"
TABLE_TIME_LIMIT = 10.0  # seconds inside SQLite for one JSON page (a filter on an unindexed column)
_HEADERS = [
    ("Content-Type", "application/json"),
    ("Cache-Control", "no-cache"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
]


def json_page(ro: ReadOnly, q: dq.Query, args: dict[str, list[str]], here: str) -> str:
    """Return one page as ``{"rows": [...], "next": URL or null}``; ``here`` is its URL."""
    size = q.size or dq.DEFAULT_SIZE
    sql, params = dq.select(q, size + 1)  # one more row says whether a next page exists
    cursor = ro.execute(sql, params)
    try:
        fetched = ro.fetch(cursor, size + 1)
    finally:
        cursor.close()  # ends the read: a pooled connection must not hold the WAL back
    page = fetched[:size]
    nxt = None
    if len(fetched) > size:
        rest: dict[str, Any] = {k: v for k, v in args.items() if k != "_next"}
        nxt = with_query(here, {**rest, "_next": [dq.token(dq.order_values(q, page[-1]))]})
    # What dumps() writes for {"rows": json_rows(...), "next": nxt}, without the dicts.
    rows = json_objects([c.name for c in q.table.columns], page)
    return '{"rows": ' + rows + ', "next": ' + dumps(nxt) + "}\n"


class OnePage:
    """A lock for reading pages one at a time that never holds a request up for long.

    A request waits at most ``wait`` seconds for it (then reads beside the holder), and
    not at all while the holder has had it longer than that: a slow filter (up to
    TABLE_TIME_LIMIT) costs the pages behind it one wait, not its whole run. With a
    shorter wait (10 ms) the threads gave up before their turn: no gain was left.
    """

    def __init__(self, wait: float = 0.05) -> None:
        self.wait = wait
        self._lock = threading.Lock()
        self._since = 0.0  # when the holder took it (read without the lock: one float)

    def acquire(self) -> bool:
        """Return True with the lock taken, False to read without it."""
        if self._lock.acquire(blocking=False) or (
            time.monotonic() - self._since < self.wait and self._lock.acquire(timeout=self.wait)
        ):
            self._since = time.monotonic()
            return True
        return False

    def release(self) -> None:
        self._lock.release()


ONE_PAGE = OnePage()


def with_query(url: str, args: dict[str, Any]) -> str:
    """Return ``url`` with a query string (built by hand: url_for would take a filter on a
    column called "name" or "_external" as its own argument)."""
    from urllib.parse import urlencode

    return url + ("?" + urlencode(args, doseq=True) if args else "")


class DataPath:
    """WSGI middleware: serve readable JSON pages of served tables directly."""

    def __init__(self, app: Callable, site: Site) -> None:
        self.app, self.site = app, site

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if (
            environ.get("REQUEST_METHOD") != "GET"
            or not path.startswith(PREFIX)
            or not path.endswith(".json")
        ):
            return self.app(environ, start_response)
        body = self._page(environ, path[len(PREFIX) : -len(".json")])
        if body is None:
            return self.app(environ, start_response)
        start_response("200 OK", [*_HEADERS, ("Content-Length", str(len(body)))])
        return [body]

    def _page(self, environ: dict, table: str) -> bytes | None:
        """Return the page's JSON, or None to let Flask answer (refusals and errors too)."""
        config = self.site.config
        if table == "sql" or table not in {t.replica_name for t in config.tables}:
            return None  # sql.json is the SQL endpoint, whatever the tables are called
        request = Request(environ)
        state = posture(self.site.password, config.web.data_api_open)
        if state != OPEN:
            given, token = presented(request), self.site.password
            if state != TOKEN or given is None or token is None:
                return None
            if self.site.throttle.wait(environ.get("REMOTE_ADDR") or "unknown"):
                return None  # a client guessing tokens: Flask answers 429
            if not hmac.compare_digest(given.encode(), token.encode()):
                return None
        try:
            file = replica_file(config.replica_url)
            if not file.exists():
                return None
            ro = pooled(file, TABLE_TIME_LIMIT)
            # data_version is read before the page's query: a commit in between makes the
            # page newer than its version, and the next request's version drops it.
            pages, key = pages_of(ro), page_key(environ)
            body = pages.get(key)
            if body is not None:
                return body
            info = dq.table_info(ro, table)
            if info is None:
                return None
            args = request.args.to_dict(flat=False)
            q = dq.parse(info, request.args, args, dq.DEFAULT_SIZE)
            here = request.root_url.rstrip("/") + request.path
            held = ONE_PAGE.acquire()
            try:
                body = json_page(ro, q, args, here).encode("utf-8")
            finally:
                if held:
                    ONE_PAGE.release()
            pages.put(key, body)
            return body
        except ApplianceError:  # a bad filter, a timeout: Flask's route says so properly
            return None
