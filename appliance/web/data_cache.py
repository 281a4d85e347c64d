"""Rendered JSON pages of the data API, kept per server thread while the replica is unchanged.

Dashboards and spreadsheets poll the same URL again and again; between two passes of the
agent the answer is the same bytes. Each server thread keeps its own read-only connection
(``replica_read.pooled``) and, beside it, the pages it rendered on it, valid while that
connection's ``PRAGMA data_version`` stays put: SQLite changes it on a connection whenever
another connection (the agent) commits, schema changes included. The value belongs to one
connection, so the cache does too: a new connection starts an empty cache.

A page is keyed by everything that makes its bytes: the scheme and host its ``next`` link
is built from, the path and the whole query string. The access check (posture, token)
runs before every lookup (``data_fast``); the cache holds only what may be read.
Bounded by bytes per thread; the oldest page goes first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from .replica_read import ReadOnly

LIMIT = 1 << 20  # bytes of pages kept per server thread (8 threads: 8 MB at most)
LARGEST = LIMIT // 4  # a larger page (1000 rows of long text) is answered, not kept

_local = threading.local()


class PageCache:
    """Pages rendered on one connection, dropped when its data changes."""

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.version: int | None = None
        self.size = 0
        self._pages: OrderedDict[tuple, bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pages)

    def clear(self) -> None:
        self._pages.clear()
        self.size = 0

    def at(self, version: int) -> PageCache:
        """Forget every page when the data changed since ``version`` was last seen; return self."""
        if version != self.version:
            self.clear()
            self.version = version
        return self

    def get(self, key: tuple) -> bytes | None:
        body = self._pages.get(key)
        if body is not None:
            self._pages.move_to_end(key)
        return body

    def put(self, key: tuple, body: bytes) -> None:
        if len(body) > min(LARGEST, self.limit) or key in self._pages:
            return
        self._pages[key] = body
        self.size += len(body)
        while self.size > self.limit:
            _, old = self._pages.popitem(last=False)
            self.size -= len(old)


def pages_of(ro: ReadOnly) -> PageCache:
    """Return this thread's pages for its pooled connection ``ro``, checked against its data."""
    if getattr(_local, "ro", None) is not ro:
        _local.ro, _local.cache = ro, PageCache()
    cache: PageCache = _local.cache
    return cache.at(ro.db.execute("PRAGMA data_version").fetchone()[0])


def page_key(environ: dict) -> tuple:
    """Return what determines a page's bytes: the request's root URL, path and query."""
    return (
        environ.get("wsgi.url_scheme"),
        environ.get("HTTP_HOST"),
        environ.get("SERVER_NAME"),
        environ.get("SERVER_PORT"),
        environ.get("SCRIPT_NAME"),
        environ.get("PATH_INFO"),
        environ.get("QUERY_STRING"),
    )


def thread_pages() -> PageCache | None:
    """Return this thread's pages, if it has served any (to look at, in tests)."""
    return getattr(_local, "cache", None)
