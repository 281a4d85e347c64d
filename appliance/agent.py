"""The sync agent: a loop around one pass, with heartbeat, clean stop and watchdog.

``run_once`` does one pass over every table and returns what happened; ``Agent.run``
repeats it every ``sync.interval``, logs one summary line per pass, survives a failed
pass, and stops cleanly on SIGTERM/SIGINT (the handler only sets a flag).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import health
from .config import Config
from .errors import ApplianceError, SourceError, TunnelError
from .replica import Replica
from .state import StateStore, iso, utcnow
from .sync import TableResult, TableSync, make_plan

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    """What one pass did: ok when the source answered and no table failed."""

    started: str
    finished: str = ""
    ok: bool = False
    error: str | None = None
    tables: list[TableResult] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(t.written + t.deleted for t in self.tables)

    def summary(self) -> str:
        if self.error:
            return f"pass failed: {self.error}"
        parts = [f"{t.name} +{t.written}/-{t.deleted}" + (" ERROR" if t.error else "")
                 for t in self.tables]
        return f"pass ok: {len(self.tables)} tables, {self.rows} rows changed ({', '.join(parts)})"


def run_once(config: Config, link, replica: Replica, store: StateStore,
             tick: Callable[[], None] = lambda: None) -> PassResult:
    """Sync every configured table once and record the outcome in the state store."""
    result = PassResult(started=iso(utcnow()))
    try:
        source = link.source()
        shapes = source.describe([t.name for t in config.tables])
        replay_lag = source.replay_lag()
        for table in config.tables:
            result.tables.append(_sync_table(config, source, replica, shapes, table, tick))
        result.ok = not any(t.error for t in result.tables)
        source_error = None
    except (TunnelError, SourceError) as e:
        replay_lag, source_error = None, str(e)
        result.error = source_error
    except ApplianceError as e:  # secrets, replica: not the source's fault, but no pass
        replay_lag, source_error = None, str(e)
        result.error = source_error
    result.finished = iso(utcnow())
    _record(config, store, link, result, source_error, replay_lag)
    return result


def _sync_table(config, source, replica, shapes, table, tick) -> TableResult:
    shape = shapes.get(table.name)
    if shape is None:
        return TableResult(table.name, table.replica_name,
                           error=f"table {table.name} does not exist at the source (or the role "
                                 f"may not see it). Check tables.name, or grant SELECT.")
    try:
        plan = make_plan(table, shape, source.is_postgres)
        return TableSync(source, replica, plan, config.sync, tick).run()
    except (SourceError, TunnelError):
        raise  # the connection failed: the whole pass stops
    except ApplianceError as e:
        return TableResult(table.name, table.replica_name, error=str(e))


def _record(config: Config, store: StateStore, link, result: PassResult, source_error: str | None,
            replay_lag: float | None) -> None:
    now = result.finished
    previous = store.get("source", {})
    down = source_error is not None
    store.put("source", {
        "tunnel": link.tunnel_state, "database": link.database_state,
        "last_error": source_error or "",
        "since": previous.get("since") if previous.get("down") == down else now,
        "down": down, "checked_at": now, "replay_lag": replay_lag,
    })
    for t in result.tables:
        store.record_table(t.name, t.replica_name, last_sync=t.last_sync, rows=t.rows,
                           synced=t.written, error=t.error, note=t.note, now=now)
    store.run(result.started, now, result.ok, result.rows, result.summary())
    health.update(config, store, now=now)


class Agent:
    """Run passes until stopped; one agent per replica."""

    def __init__(self, config: Config, link, replica: Replica, store: StateStore,
                 interval: float | None = None, notifier=None) -> None:
        self.config, self.link, self.replica, self.store = config, link, replica, store
        self.interval = config.sync.interval if interval is None else interval
        self.stopping = threading.Event()
        self._last_beat = 0.0
        self._notifier = notifier

    def heartbeat(self, force: bool = False) -> None:
        """Record that the agent is alive (at most every 2 s unless forced)."""
        now = time.monotonic()
        if force or now - self._last_beat > 2:
            self._last_beat = now
            info = self.store.get("agent", {})
            info.update(pid=os.getpid(), heartbeat=iso(utcnow()), interval=self.interval,
                        running=True)
            self.store.put("agent", info)

    def _install_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stopping.set())

    def run(self, once: bool = False) -> PassResult:
        """Loop (or do one pass with ``once``); return the last pass's result."""
        self._install_signals()
        self.store.put("agent", {"started": iso(utcnow()), "pid": os.getpid(), "running": True})
        self.store.event("agent", f"agent started (pid {os.getpid()})")
        self.heartbeat(force=True)
        watchdog = _Watchdog()
        result = None
        try:
            while True:
                t0 = time.monotonic()
                result = run_once(self.config, self.link, self.replica, self.store, self.heartbeat)
                self.heartbeat(force=True)
                log.info("%s (%.2fs)", result.summary(), time.monotonic() - t0)
                watchdog.tick()
                if once or self.stopping.wait(max(0.0, self.interval - (time.monotonic() - t0))):
                    break
        finally:
            info = self.store.get("agent", {})
            info.update(running=False, stopped=iso(utcnow()))
            self.store.put("agent", info)
            self.store.event("agent", "agent stopped")
            watchdog.stopping()
        return result


class _Watchdog:
    """systemd notifications: READY after the first real pass, WATCHDOG after each."""

    def __init__(self) -> None:
        self.ready = False
        try:
            import sdnotify

            self.notifier = sdnotify.SystemdNotifier() if os.environ.get("NOTIFY_SOCKET") else None
        except ImportError:  # pragma: no cover - a dependency, but never fatal
            self.notifier = None

    def tick(self) -> None:
        if self.notifier is None:
            return
        if not self.ready:
            self.notifier.notify("READY=1")
            self.ready = True
        self.notifier.notify("WATCHDOG=1")

    def stopping(self) -> None:
        if self.notifier is not None:
            self.notifier.notify("STOPPING=1")
