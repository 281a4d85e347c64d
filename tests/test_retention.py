"""Retention: the state store and the replica's history stay bounded, trimmed in small batches
under a writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from support.harness import Harness
from support.wait import wait_until

from appliance.clock import iso
from appliance.config import parse
from appliance.errors import ConfigError
from appliance.health.store import StateStore
from appliance.health.watch import AgentWatcher, cutoffs
from appliance.sync import upkeep

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _config(tmp_path, **retention):
    return parse(
        {
            "appliance": {"state_dir": str(tmp_path)},
            "source": {"host": "db", "database": "d", "user": "u"},
            "retention": retention,
            "tables": [{"name": "public.t"}],
        }
    )


def test_retention_defaults_keep_a_year_of_events():
    cfg = parse({"source": {"host": "db", "database": "d", "user": "u"}, "tables": [{"name": "public.t"}]})
    assert cfg.retention.events == 365 * 86400 and cfg.retention.runs == 30 * 86400


def test_retention_refuses_silly_values(tmp_path):
    with pytest.raises(ConfigError, match="retention.events: 1h is outside 1d"):
        _config(tmp_path, events="1h")


def test_retention_of_history_defaults_to_a_year_within_a_bound():
    cfg = parse({"source": {"host": "db", "database": "d", "user": "u"}, "tables": [{"name": "public.t"}]})
    assert cfg.retention.history == 365 * 86400 and cfg.retention.history_rows == 250_000


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ({"history": "2h"}, "retention.history: 2h is outside 1d..3650d"),
        ({"history": "4000d"}, "retention.history: 4000d is outside 1d..3650d (fix: choose a duration"),
        ({"history_rows": 10}, "retention.history_rows: 10 is outside 1,000..100,000,000 (fix: choose a"),
        ({"history_rows": 10**9}, "retention.history_rows: 1,000,000,000 is outside 1,000..100,000,000"),
        ({"history_rows": "many"}, "retention.history_rows: expected a whole number"),
    ],
)
def test_retention_of_history_refuses_values_out_of_bounds(tmp_path, values, shown):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, **values)
    assert shown in str(caught.value)


def test_retention_of_history_at_its_bounds_loads(tmp_path):
    low = _config(tmp_path, history="1d", history_rows=1000).retention
    high = _config(tmp_path, history="3650d", history_rows=100_000_000).retention
    assert (low.history, low.history_rows) == (86400, 1000)
    assert (high.history, high.history_rows) == (3650 * 86400, 100_000_000)


def test_retention_trims_old_records_in_batches_and_keeps_new_ones(tmp_path):
    cfg = _config(tmp_path, events="30d", runs="1d", outbox="1d")
    with StateStore(cfg.state_dir) as store:
        for days in range(60):
            at = iso(NOW - timedelta(days=days))
            store.event("state", f"event {days} days old", at=at)
            store.run(at, at, True, 0, f"pass {days}")
        store.enqueue("webhook", {"text": "old"})
        store.db.execute("UPDATE outbox SET sent = 'x', created = ?", (iso(NOW - timedelta(days=5)),))
        store.enqueue("webhook", {"text": "unsent"})  # never delivered yet: kept
        deleted = store.trim(cutoffs(cfg, NOW), batch=7, batches=100)
        events = [e["message"] for e in store.events(100)]
        runs = [r["summary"] for r in store.runs(100)]
        outbox = [row["payload"]["text"] for row in store.outbox()]
    assert deleted == 29 + 58 + 1
    assert len(events) == 31 and events[0] == "event 30 days old" and events[-1] == "event 0 days old"
    assert runs == ["pass 1", "pass 0"] and outbox == ["unsent"]


def test_retention_batches_stop_and_resume(tmp_path):
    cfg = _config(tmp_path, events="1d")
    with StateStore(cfg.state_dir) as store:
        for i in range(50):
            store.event("x", f"old {i}", at=iso(NOW - timedelta(days=10)))
        assert store.trim({"events": iso(NOW - timedelta(days=1))}, batch=10, batches=2) == 20
        assert store.trim({"events": iso(NOW - timedelta(days=1))}, batch=10, batches=10) == 30


def test_retention_trim_runs_beside_a_writer(tmp_path):
    cfg = _config(tmp_path, events="1d")
    with StateStore(cfg.state_dir) as store:
        for i in range(3000):
            store.event("x", f"old {i}", at=iso(NOW - timedelta(days=10)))
    stop, written = threading.Event(), []

    def writer():
        with StateStore(cfg.state_dir) as store:
            while not stop.is_set():
                store.event("agent", "fresh")  # must never hit "database is locked"
                written.append(1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        wait_until(lambda: written, what="the writer's first event")  # the trim runs beside it
        watcher = AgentWatcher(cfg, clock=lambda: NOW)
        for _ in range(3):
            watcher.look()
    finally:
        stop.set()
        thread.join()
    with StateStore(cfg.state_dir) as store:
        left = store.db.execute("SELECT count(*) FROM events WHERE message LIKE 'old %'").fetchone()[0]
    assert left == 0 and written


KEYS, VERSIONS = 5_000, 60  # 300,000 versions: one DELETE of them all holds the lock over a second
BLOCKED_AT_MOST = 0.5  # seconds a reader or a writer may wait; a batch takes milliseconds


def test_retention_trims_history_in_batches_beside_a_writer_and_readers(sales, make_config):
    sales.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz NOT NULL "
        "DEFAULT now()); INSERT INTO orders (id, status) SELECT g, 'new' FROM generate_series(1, %s) g",
        (KEYS,),
        db="sales",
    )
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at", "history": ["status"]}])
    with Harness(cfg) as h:
        h.sync()  # the history table, as the sync makes it
        path = h.replica.path
        h.replica.db.execute("DELETE FROM orders__history")
        # A year and more of changes: each order went through VERSIONS statuses, long ago.
        h.replica.db.execute(
            "INSERT INTO orders__history (id, column_name, value, cursor_value, seen_at) "
            "WITH RECURSIVE v(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM v WHERE n + 1 < ?), "
            "k(id) AS (SELECT 1 UNION ALL SELECT id + 1 FROM k WHERE id < ?) "
            "SELECT id, 'status', 's' || n, NULL, "
            "strftime('%Y-%m-%dT%H:%M:%fZ', '2025-01-01', n || ' minutes') FROM v, k ORDER BY n, id",
            (VERSIONS, KEYS),
        )
        stop = threading.Event()
        waits: dict[str, list[float]] = {"reader": [], "writer": []}

        def writer() -> None:  # the sync, adding versions of new orders meanwhile
            db = sqlite3.connect(path, isolation_level=None, timeout=30)
            n = KEYS
            while not stop.is_set():
                n += 1
                t0 = time.monotonic()
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO orders__history VALUES (?, 'status', 'new', NULL, ?)", (n, iso(NOW)))
                db.execute("COMMIT")
                waits["writer"].append(time.monotonic() - t0)
                stop.wait(0.01)  # the sync's batches come with gaps (reading the source)
            db.close()

        def reader() -> None:  # the page, reading one order's latest status
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, timeout=30)
            while not stop.is_set():
                t0 = time.monotonic()
                db.execute(
                    "SELECT value FROM orders__history WHERE id = ? ORDER BY rowid DESC LIMIT 1",
                    (len(waits["reader"]) % KEYS + 1,),
                ).fetchall()
                waits["reader"].append(time.monotonic() - t0)
                stop.wait(0.002)
            db.close()

        statements: list[str] = []
        h.replica.db.set_trace_callback(statements.append)
        threads = [threading.Thread(target=writer), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        try:
            report = upkeep.run(h.config, h.replica, h.store, NOW)  # the defaults: 365d, 250,000
        finally:
            stop.set()
            for t in threads:
                t.join()
            h.replica.db.set_trace_callback(None)
        latest = dict(h.replica.db.execute("SELECT id, value FROM orders__history WHERE id <= ?", (KEYS,)))
        added = h.replica.db.execute("SELECT count(*) FROM orders__history WHERE id > ?", (KEYS,)).fetchone()[
            0
        ]
    assert report.history_deleted == KEYS * (VERSIONS - 1)
    assert len(latest) == KEYS and set(latest.values()) == {f"s{VERSIONS - 1}"}  # the current ones stay
    assert added == len(waits["writer"]) > 0  # every version the writer added is kept
    deletes = [s for s in statements if s.startswith("DELETE FROM")]
    assert len(deletes) >= 100  # in batches of history.TRIM_BATCH, not one statement
    assert max(waits["reader"]) < BLOCKED_AT_MOST and max(waits["writer"]) < BLOCKED_AT_MOST, (
        max(waits["reader"]),
        max(waits["writer"]),
    )
