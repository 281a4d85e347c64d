"""Open the replica read-only, three times over, for the data API.

The web process is a reader (BRIEF 2): it opens the agent's SQLite file itself, never
through ``appliance.sync``. Every connection is read-only three ways, so one mistake in
one layer cannot write the replica: the file is opened ``mode=ro``, ``PRAGMA query_only``
is on, and an authorizer allows only reading (SELECT, reads, functions, recursive CTEs
and a few schema PRAGMAs). The authorizer also refuses ATTACH, which is what
``VACUUM INTO`` does first: ``mode=ro`` alone would let it write a copy anywhere.
It hides the agent's own bookkeeping (``_appliance_*`` tables; the row-hash column).
A time limit is kept twice: the progress handler between steps, and a thread that
interrupts the statement at its deadline (``interrupts``: one step may be long).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path
from urllib.parse import quote

from ..errors import ApplianceError
from .interrupts import INTERRUPTER

log = logging.getLogger(__name__)

BOOKKEEPING = "_appliance_"  # the agent's own tables (replica.py); never served
HIDDEN_COLUMNS = {"_appliance_hash"}  # reconciliation's cache of each row's hash
# PRAGMAs that only read the schema; every other PRAGMA (writing or not) is refused.
READ_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
_VERSIONS = {"schema_version", "data_version"}  # read to know when cached pages are stale
_ALLOWED = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}
_REFUSED_FUNCTIONS = {"load_extension"}
PROGRESS_STEPS = 1000  # SQLite VM steps between two looks at the clock


class ReplicaMissing(ApplianceError, FileNotFoundError):
    """The replica does not exist yet: the agent has not synced anything."""


def replica_missing(path: Path) -> ReplicaMissing:
    """Return the error for a replica file not there yet; its path goes to the journal only.

    The data API may be open to the LAN, and the path names the state folder.
    """
    log.info("the replica %s does not exist yet", path)
    return ReplicaMissing(
        "the replica (replica.url) does not exist yet: nothing has been synced. "
        "Start the agent (appliance sync) and wait for its first pass."
    )


class QueryRefused(ApplianceError, PermissionError):
    """The statement would do more than read."""


class QueryTimeout(ApplianceError, TimeoutError):
    """The query ran past its time limit and was ended."""


def replica_file(url: str) -> Path:
    """Return the file of a ``sqlite:///`` replica URL (the agent writes only SQLite)."""
    if not url.startswith("sqlite:///"):
        raise ApplianceError(
            f"the data API reads a SQLite replica; replica.url is not one ({url.split(':')[0]})"
        )
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


class ReadOnly:
    """One read-only connection to the replica, with a per-query time budget.

    ``user`` marks SQL typed by a person: bookkeeping tables are then refused too.
    Close it (or use ``with``) when done; it holds no transaction between statements.
    """

    def __init__(self, path: Path, user: bool = False, time_limit: float | None = None) -> None:
        if not path.exists():
            raise replica_missing(path)
        self.user = user
        self.keep = False  # a pooled connection outlives its request (see pooled())
        self.time_limit = time_limit
        self.spent = 0.0  # seconds inside SQLite so far (see budget())
        self._started: float | None = None
        self.refused: str | None = None
        self.path = path
        self.db = sqlite3.connect(
            f"file:{quote(str(path))}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
        try:
            self.db.execute("PRAGMA query_only = ON")
            self.db.execute("PRAGMA busy_timeout = 5000")
            self.db.set_authorizer(self._authorize)
            if time_limit is not None:
                self.db.set_progress_handler(self._over_time, PROGRESS_STEPS)
        except sqlite3.Error:
            self.db.close()
            raise

    def close(self) -> None:
        if not self.keep:
            self.db.close()

    def __enter__(self) -> ReadOnly:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the guards ----------------------------------------------------------------------
    def _authorize(self, action: int, arg1, arg2, _db, _trigger) -> int:
        if action == sqlite3.SQLITE_READ:
            if arg2 in HIDDEN_COLUMNS:
                return sqlite3.SQLITE_IGNORE  # reads as NULL
            if self.user and str(arg1).startswith(BOOKKEEPING):
                return self._deny(f"{arg1} is the appliance's own bookkeeping, not data")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in _REFUSED_FUNCTIONS:
            return self._deny(f"the function {arg2} is not allowed")
        if action in _ALLOWED:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and str(arg1).lower() in READ_PRAGMAS:
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA and str(arg1).lower() in _VERSIONS and arg2 is None:
            return sqlite3.SQLITE_OK  # reading it; setting schema_version would corrupt the file
        return self._deny("only reading is allowed (SELECT); this statement would do more")

    def _deny(self, why: str) -> int:
        self.refused = why
        return sqlite3.SQLITE_DENY

    def _over_time(self) -> int:
        # Non-zero ends the statement (sqlite3.OperationalError "interrupted").
        if self._started is None or self.time_limit is None:
            return 0
        return int(self.spent + time.monotonic() - self._started > self.time_limit)

    # -- running -------------------------------------------------------------------------
    def execute(self, sql: str, params: tuple | list = ()) -> sqlite3.Cursor:
        """Run one statement; raise QueryRefused or QueryTimeout instead of sqlite's errors."""
        self.refused = None
        return self.timed(lambda: self.db.execute(sql, params))

    def fetch(self, cursor: sqlite3.Cursor, n: int) -> list[tuple]:
        """Return up to ``n`` more rows, within the query's time budget."""
        return self.timed(lambda: cursor.fetchmany(n))

    def timed(self, step):
        """Run ``step`` while counting its time against the budget.

        Only time inside SQLite counts: a slow client reading a CSV export does not make
        the query time out, while a query that computes without end does.
        """
        self._started = time.monotonic()
        if self.time_limit is not None:
            INTERRUPTER.watch(self.db, self._started + self.time_limit - self.spent)
        try:
            return step()
        except sqlite3.DatabaseError as e:
            if self.refused:
                raise QueryRefused(f"refused: {self.refused}") from None
            if "interrupted" in str(e):
                raise QueryTimeout(
                    f"the query took longer than its limit of {self.time_limit:g} s and was ended; "
                    f"add a WHERE or a LIMIT, or export the table as CSV instead"
                ) from None
            raise
        finally:
            if self.time_limit is not None:
                INTERRUPTER.unwatch(self.db)
            self.spent += time.monotonic() - self._started
            self._started = None


_pool = threading.local()


def pooled(path: Path, time_limit: float | None) -> ReadOnly:
    """Return this thread's read-only connection to ``path``, for one JSON page.

    Opening a connection (and its PRAGMAs) cost a fifth of a page's time; each server
    thread keeps one instead. It holds no transaction between requests as long as every
    statement run on it is finished or closed (``_page`` closes its cursor).
    """
    ro = getattr(_pool, "ro", None)
    if ro is None or ro.path != path or not path.exists():
        if ro is not None:
            ro.keep = False
            ro.close()
        ro = ReadOnly(path, time_limit=time_limit)
        ro.keep = True
        _pool.ro = ro
    ro.time_limit, ro.spent, ro.refused = time_limit, 0.0, None
    return ro
