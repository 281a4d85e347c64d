"""The sync agent: a loop around one pass, with heartbeat, clean stop and watchdog.

``run_once`` does one pass over every table and returns what happened; ``Agent.run``
repeats it every ``sync.interval``, logs one summary line per pass, survives a failed
pass, and stops cleanly on SIGTERM/SIGINT (the handler only sets a flag).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..clock import iso, utcnow
from ..config import Config
from ..errors import (
    ApplianceError,
    HostKeyError,
    LoginError,
    QueryError,
    ReplicaError,
    SecretError,
    SourceError,
    TunnelError,
)
from ..health import notify
from ..health import status as health
from ..health.store import StateStore
from ..service import StopFlag, Systemd
from . import reconcile as reconcile_mod
from . import upkeep
from .guard import Guard
from .marks import Wanted, read_marks
from .masking import mask_key, masker
from .replica import Replica
from .table import TableResult, TableSync, make_plan

log = logging.getLogger(__name__)


@dataclass
class PassResult:
    """What one pass did: ok when the source answered and no table failed."""

    started: str
    finished: str = ""
    ok: bool = False
    error: str | None = None
    tables: list[TableResult] = field(default_factory=list)
    statements: int = 0  # sent to the source: over a distant link, each is a round trip
    link_seconds: float = 0.0  # spent opening the link (tunnel, handshake, login)

    @property
    def rows(self) -> int:
        return sum(t.written + t.deleted for t in self.tables)

    def summary(self) -> str:
        if self.error:
            return f"pass failed: {self.error}"
        failed = any(t.error for t in self.tables)  # each failed table says ERROR below
        parts = [f"{t.name} +{t.written}/-{t.deleted}" + (" ERROR" if t.error else "") for t in self.tables]
        return (
            ("pass with errors: " if failed else "pass ok: ")
            + f"{len(self.tables)} tables, {self.rows} rows changed, "
            f"{self.statements} statements ({', '.join(parts)})"
        )


def failure_kind(error: Exception) -> str:
    """Return which part failed, for the status reason: tunnel, hostkey, login, ..."""
    for cls, kind in (
        (HostKeyError, "hostkey"),
        (TunnelError, "tunnel"),
        (LoginError, "login"),
        (SourceError, "database"),
        (SecretError, "secret"),
    ):
        if isinstance(error, cls):
            return kind
    return "replica"


def run_once(
    config: Config, link, replica: Replica, store: StateStore, tick: Callable[[], None] = lambda: None
) -> PassResult:
    """Sync every configured table once and record the outcome in the state store."""
    result = PassResult(started=iso(utcnow()))
    error, replay_lag, clock_offset = None, None, None
    counted = link.statements
    try:
        source = link.source()
        result.link_seconds = link.open_seconds
        schemas = sorted({t.schema for t in config.tables})
        shapes, schema_tables = source.describe_all([t.name for t in config.tables], schemas)
        guard = Guard(config, store, source, replica)
        verdicts = guard.check(shapes, schema_tables)
        replay_lag, clock_offset = source.clocks()
        marks = read_marks(source, _wanted_marks(config, replica, shapes, verdicts), config.sync.lookback)
        for table in config.tables:
            result.tables.append(
                _sync_table(config, source, replica, guard, shapes, verdicts[table.name], table, tick, marks)
            )
        result.ok = not any(t.error for t in result.tables)
    except ApplianceError as e:  # the source, the tunnel, a secret or the replica: no pass
        error = link.explain(e)
        result.error = str(error)
    except Exception as e:  # noqa: BLE001 - a name or value nobody foresaw: this pass fails, the agent goes on
        log.exception("the pass failed before its tables")
        error = QueryError(f"the pass failed on something unforeseen ({type(e).__name__}: {str(e)[:300]})")
        result.error = str(error)
    result.statements = link.statements - counted
    result.finished = iso(utcnow())
    with store.transaction():  # one commit for the pass's records: the card writes each page once
        record_source(
            config,
            store,
            link,
            error,
            replay_lag,
            now=result.finished,
            update=False,
            clock_offset=clock_offset,
        )
        for t in result.tables:
            store.record_table(
                t.name,
                t.replica_name,
                last_sync=t.last_sync,
                rows=t.rows,
                synced=t.written,
                error=t.error,
                note=t.note,
                now=result.finished,
            )
        store.run(result.started, result.finished, result.ok, result.rows, result.summary())
        health.update(config, store, now=result.finished)
    return result


def _wanted_marks(config: Config, replica: Replica, shapes, verdicts) -> list[Wanted]:
    """Return the tables past their initial copy whose high-water mark this pass needs."""
    wanted = []
    for t in config.tables:
        shape, st = shapes.get(t.name), replica.state(t.replica_name)
        if not t.cursor or shape is None or verdicts[t.name].frozen or st is None:
            continue
        if st.phase != "incremental":
            continue
        try:
            key = [shape.column(k) for k in (t.primary_key or shape.primary_key)]
            wanted.append(Wanted(t, shape.column(t.cursor), key))
        except KeyError:
            continue  # a key or cursor gone: the table's own path reports it
    return wanted


def _sync_table(config, source, replica, guard, shapes, verdict, table, tick, marks) -> TableResult:
    shape = shapes.get(table.name)
    if verdict.error:
        return TableResult(table.name, table.replica_name, error=verdict.error)
    if verdict.frozen:
        return TableResult(
            table.name,
            table.replica_name,
            note="frozen by schema drift: the last good data is kept; "
            "accept the change (appliance schema accept) to resume",
        )
    if shape is None:
        return TableResult(
            table.name,
            table.replica_name,
            error=f"table {table.name} does not exist at the source (or the role "
            f"may not see it). Check tables.name, or grant SELECT.",
        )
    try:
        plan = make_plan(table, shape, source.is_postgres, only=verdict.columns)
        masked = [i for i, c in enumerate(plan.columns) if c.name in table.mask_columns]
        if masked:
            plan.mask = masker(mask_key(config.state_dir), masked)
        key = [k.name for k in plan.key]
        return TableSync(
            source,
            replica,
            plan,
            config.sync,
            tick,
            lambda rows: guard.violations(table, verdict, plan.names, key, rows),
            marks.get(table.name),
        ).run()
    except QueryError as e:  # the source answered with an error: this table's, the others go on
        return TableResult(table.name, table.replica_name, error=str(e))
    except (SourceError, TunnelError):
        raise  # the connection failed: the whole pass stops
    except ApplianceError as e:
        return TableResult(table.name, table.replica_name, error=str(e))
    except Exception as e:  # a row or a name nobody foresaw: this table's error, never the agent's exit
        log.exception("%s: the pass of this table failed", table.name)
        return TableResult(table.name, table.replica_name, error=f"{type(e).__name__}: {str(e)[:300]}")


def record_source(
    config: Config,
    store: StateStore,
    link,
    error: Exception | None,
    replay_lag: float | None = None,
    now: str | None = None,
    update: bool = True,
    clock_offset: float | None = None,
) -> None:
    """Record whether the source is reachable (and why not), and how its clock differs
    from ours when this pass read it; update health if asked."""
    now = now or iso(utcnow())
    previous = store.get("source", {})
    down = error is not None
    store.put(
        "source",
        {
            "tunnel": link.tunnel_state,
            "database": link.database_state,
            "last_error": str(error) if error else "",
            "kind": failure_kind(error) if error else "",
            "since": previous.get("since") if previous.get("down") == down else now,
            "down": down,
            "checked_at": now,
            "replay_lag": replay_lag if not down else previous.get("replay_lag"),
            "clock_offset": previous.get("clock_offset") if clock_offset is None else round(clock_offset, 3),
            "statements_total": previous.get("statements_total", 0),
        },
    )
    if update:
        health.update(config, store, now=now)


def count_statements(store: StateStore, n: int) -> None:
    """Add ``n`` to the statements sent to the source, for /metrics
    (``appliance_source_statements_total``; the page reads it from the state store)."""
    if n:
        source = store.get("source", {})
        source["statements_total"] = source.get("statements_total", 0) + n
        store.put("source", source)


JUDGE_EVERY = 10.0  # seconds between judgements of the state by the heartbeat
# Seconds between heartbeats: well inside the 30 s after which the agent counts as down (three
# beats), and each one is a page written to the SD card.
HEARTBEAT_EVERY = 10.0


def backoff(failures: int, cap: float) -> float:
    """Return the wait before reconnect attempt ``failures``: 1, 2, 4 ... s, at most ``cap``."""
    return min(cap, 2.0 ** max(0, failures - 1))


class Agent:
    """Run passes until stopped; one agent per replica.

    Between passes it probes the link every ``probe_interval`` (tunnel process alive,
    ``SELECT 1``), so a cut tunnel or a stopped database shows as an outage within seconds
    rather than at the next pass. While the source is down it retries with capped
    exponential backoff (at most one interval), so recovery shows within one cycle.
    """

    def __init__(
        self,
        config: Config,
        link,
        replica: Replica,
        store: StateStore,
        interval: float | None = None,
        probe_interval: float | None = None,
    ) -> None:
        self.config, self.link, self.replica, self.store = config, link, replica, store
        self.interval = config.sync.interval if interval is None else interval
        self.probe_interval = config.sync.probe_interval if probe_interval is None else probe_interval
        self.stopping = StopFlag()  # SIGTERM / SIGINT set it while run() runs
        self.failures = 0
        self._last_beat = 0.0
        self._last_judged = time.monotonic()  # a pass judges at its end; the first one is near
        self._counted = link.statements  # statements already added to the state store
        self.systemd = Systemd(config.environ)

    def heartbeat(self, force: bool = False) -> None:
        """Record that the agent is alive (at most every ``HEARTBEAT_EVERY`` unless forced), and the state
        when time alone changed it (at most every ``JUDGE_EVERY``)."""
        now = time.monotonic()
        if force or now - self._last_beat > HEARTBEAT_EVERY:
            self._last_beat = now
            info = self.store.get("agent", {})
            info.update(pid=os.getpid(), heartbeat=iso(utcnow()), interval=self.interval, running=True)
            self.store.put("agent", info)
            self.systemd.alive()  # called per page of a copy and per pass: real work
        if now - self._last_judged > JUDGE_EVERY:
            # Lag grows while a long pass runs or the agent waits: without this, lagging
            # and outage-by-lag were recorded (event, notification) only when a pass ended.
            self._last_judged = now
            health.update(self.config, self.store)

    def _pass(self, reconcile: bool = False) -> tuple[PassResult, float]:
        """Run one pass (reconciling the tables that are due, or all with ``reconcile``);
        return it and the delay before the next one."""
        t0 = time.monotonic()
        result = run_once(self.config, self.link, self.replica, self.store, self.heartbeat)
        before_reconcile = self.link.statements
        if not result.error:

            def tick() -> None:  # a reconciliation can take minutes: heartbeat, and stop on SIGTERM
                self.heartbeat()
                if self.stopping.is_set():
                    raise reconcile_mod.Stopped()

            result.error = reconcile_mod.after_pass(
                self.config, self.link, self.replica, self.store, result.tables, force=reconcile, tick=tick
            )
            result.ok = result.ok and not result.error and not any(t.error for t in result.tables)
        result.statements += self.link.statements - before_reconcile
        self.heartbeat(force=True)
        # The duration leaves out opening the link (BRIEF 9: "Pass summary line").
        log.info("%s (%.2fs)", result.summary(), time.monotonic() - t0 - result.link_seconds)
        count_statements(self.store, self.link.statements - self._counted)  # probes included
        self._counted = self.link.statements
        if result.error:
            self.failures += 1
            return result, backoff(self.failures, self.interval)
        self.failures = 0
        return result, max(0.0, self.interval - (time.monotonic() - t0))

    def _probe(self) -> bool:
        """Check the link; on failure record the outage now. Return True if healthy."""
        try:
            self.link.check()
            return True
        except ApplianceError as e:
            log.warning("probe: %s", e)
            record_source(self.config, self.store, self.link, e)
            self.failures = max(self.failures, 1)
            return False

    def _wait(self, delay: float) -> None:
        """Wait ``delay`` seconds, probing the link meanwhile while it is healthy."""
        deadline = time.monotonic() + delay
        while not self.stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self.stopping.wait(min(left, self.probe_interval)):
                return
            self.heartbeat()
            if self.failures == 0 and time.monotonic() < deadline and not self._probe():
                deadline = time.monotonic() + backoff(1, self.interval)

    def run(self, once: bool = False, reconcile: bool = False) -> PassResult | None:
        """Loop (or do one pass with ``once``); return the last pass's result (None: stopped first)."""
        damage = self.replica.damage()
        if damage:  # never write on top of damaged pages: the last good data stays readable
            error = ReplicaError(
                f"the replica {self.config.replica_url} is damaged ({damage}). The SD card may be "
                f"failing: stop the agent, move the file aside (it may still be read with sqlite3's "
                f".recover), and start it again: every table is copied again."
            )
            record_source(self.config, self.store, self.link, error)
            raise error
        self.store.put("agent", {"started": iso(utcnow()), "pid": os.getpid(), "running": True})
        self.store.event("agent", f"agent started (pid {os.getpid()})")
        self.systemd.ready()  # started; a long first copy must not hit TimeoutStartSec
        self.heartbeat(force=True)
        sender = notify.Sender(self.config).start()
        result = None
        try:
            with self.stopping:  # SIGTERM / SIGINT only set the flag; restored on the way out
                while not self.stopping.is_set():
                    result, delay = self._pass(reconcile)
                    reconcile = False  # --reconcile: now; then every sync.reconcile_every
                    upkeep.run_if_due(self.config, self.replica, self.store, self.heartbeat)  # hourly
                    if once:
                        break
                    sender.wake.set()
                    self._wait(delay)
        finally:
            info = self.store.get("agent", {})
            info.update(running=False, stopped=iso(utcnow()))
            self.store.put("agent", info)
            self.store.event("agent", "agent stopped")
            self.systemd.stopping()
            self.systemd.close()
            if once:  # deliver what this pass queued before exiting
                notify.Sender(self.config).deliver_due(self.store)
            sender.stop()
        return result
