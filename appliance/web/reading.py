"""What the pages read from the state store, once per generation (see ``cache``).

Only the state store is read (BRIEF 2): the web process works while the agent is down
and on first boot, when there is no store yet.
"""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..clock import iso, parse_iso, utcnow
from ..config import Config
from ..errors import StateError
from ..health import status as health
from ..health.store import RUNS_KEPT, StateStore
from .history import Passes
from .redact import redacted, redactor

EVENTS_ON_PAGE = 20  # the overview's share of the event log; older ones are paged
EVENT_PAGE = 50  # events per page of /events
HISTORY_SCAN = 10_000  # most events read for the 24 h bars (the store keeps 10,000)


@dataclass
class Snapshot:
    """One consistent reading: the status document and what the pages add to it."""

    now: datetime
    status: dict[str, Any]
    source: dict[str, Any]  # the agent's record of the source ("kind" of failure etc.)
    records: dict[str, dict]  # StateStore.tables(): rows_synced_total and friends
    events: list[dict] = field(default_factory=list)  # the newest EVENTS_ON_PAGE

    @property
    def state(self) -> str:
        return self.status["state"]


@contextmanager
def reading(config: Config) -> Iterator[StateStore]:
    """Open the state store read-only; a damaged file becomes a StateError with a fix."""
    try:
        with StateStore(config.state_dir, readonly=True) as store:
            yield store
    except sqlite3.DatabaseError as e:
        raise StateError(
            f"cannot read the state store in {config.state_dir}: {e}. Stop the "
            f"agent, move state.sqlite aside and start it again (it starts a "
            f"fresh one)."
        ) from None


def read_snapshot(config: Config) -> Snapshot:
    """Return the status document (``appliance status --json`` with the names, users, paths
    and pids of ``redact`` left out: reading is open to the LAN) and its context."""
    redact = redactor(config)
    with reading(config) as store:
        status = health.current_status(config)
        return Snapshot(
            now=utcnow(),
            status=redacted(status, redact),
            source=redacted(store.get("source", {}), redact),
            records=store.tables(),
            events=redacted(store.events(EVENTS_ON_PAGE), redact),
        )


def events_before(config: Config, before: int | None, limit: int = EVENT_PAGE) -> list[dict]:
    """Return one keyset page of the event log, newest first (cost independent of its length)."""
    with reading(config) as store:
        return redacted(store.events(limit, before), redactor(config))


def read_table(config: Config, name: str) -> tuple[dict | None, list[dict]]:
    """Return the table's accepted contract (or None) and the recent sync passes."""
    with reading(config) as store:
        return _contract(config, store, name), redacted(store.runs(50), redactor(config))


def _contract(config: Config, store: StateStore, name: str) -> dict | None:
    """Return the contract file ``<state_dir>/contract/<table>.json``, else the store's copy.

    Read here rather than through ``appliance.contract``, which imports the source module
    (a writer) for its types.
    """
    path = Path(config.state_dir) / "contract" / f"{name}.json"
    if "/" not in name:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as e:
            raise StateError(
                f"cannot read the contract {path}: {e}. Accept the table's schema "
                f"again (appliance schema accept) to rewrite it."
            ) from None
    return store.get(f"contract:{name}")


def history_inputs(config: Config, since: datetime) -> tuple[list[dict], Passes]:
    """Return the state changes since ``since`` and the hours that saw a pass.

    Bounded queries on the store's tables (``StateStore`` has no such reads yet): the
    rowid range caps the events examined at HISTORY_SCAN, ISO-8601 UTC text compares in
    time order, and the runs are counted per hour in SQLite. So the cost is the same for
    a log of a hundred events and of a hundred thousand.
    """
    with reading(config) as store:
        try:
            return _state_changes(store.db, iso(since)), _passes(store.db, iso(since))
        except sqlite3.OperationalError:  # a store without these tables yet: nothing ran
            return [], Passes(frozenset(), None, True)


def _state_changes(db: sqlite3.Connection, since: str) -> list[dict]:
    (last,) = db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
    rows = db.execute(
        "SELECT id, at, kind, table_name, message FROM events "
        "WHERE id > ? AND kind = 'state' AND at >= ? ORDER BY id",
        (last - HISTORY_SCAN, since),
    )
    return [dict(zip(("id", "at", "kind", "table", "message"), r, strict=True)) for r in rows]


def _passes(db: sqlite3.Connection, since: str) -> Passes:
    # Runs are appended and trimmed by id, so the ids tell the count and the oldest.
    first, last = db.execute("SELECT min(id), max(id) FROM runs").fetchone()
    if first is None:
        return Passes(frozenset(), None, True)
    (oldest,) = db.execute("SELECT finished FROM runs WHERE id = ?", (first,)).fetchone()
    hours = db.execute(
        "SELECT DISTINCT substr(finished, 1, 13) FROM runs WHERE finished >= ?", (since,)
    ).fetchall()
    return Passes(
        frozenset(datetime.fromisoformat(f"{h}:00:00+00:00") for (h,) in hours),
        parse_iso(oldest),
        last - first + 1 < RUNS_KEPT,
    )


def hostname() -> str:
    """Return this machine's host name."""
    return socket.gethostname()


def lan_ip() -> str:
    """Return the address the LAN reaches this machine at (no packet is sent)."""
    try:
        from ..indicator.address import lan_ip as probe  # the display shows the same address
    except ImportError:
        return "127.0.0.1"
    return probe() or "127.0.0.1"
