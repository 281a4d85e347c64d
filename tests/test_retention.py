"""Retention: the state store keeps a bounded history, trimmed in small batches under a writer."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from appliance.clock import iso
from appliance.config import parse
from appliance.errors import ConfigError
from appliance.health.store import StateStore
from appliance.health.watch import AgentWatcher, cutoffs

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
        watcher = AgentWatcher(cfg, clock=lambda: NOW)
        for _ in range(3):
            watcher.look()
    finally:
        stop.set()
        thread.join()
    with StateStore(cfg.state_dir) as store:
        left = store.db.execute("SELECT count(*) FROM events WHERE message LIKE 'old %'").fetchone()[0]
    assert left == 0 and written
