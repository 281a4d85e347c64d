"""Planned maintenance: a source down inside a window is expected, outside it an outage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from support.running import RunningAgent
from support.tomlconf import password_file, sections, write_config

from appliance.cli import main
from appliance.clock import iso
from appliance.config import parse
from appliance.errors import ConfigError
from appliance.health import maintenance
from appliance.health import status as health
from appliance.health.store import StateStore

BASE = {
    "source": {"host": "db", "database": "d", "user": "u"},
    "sync": {"warn_lag": "10m", "max_lag": "1h"},
    "tables": [{"name": "public.orders"}, {"name": "public.items"}],
}


def _config(tmp_path, *blocks: dict):
    return parse({**BASE, "appliance": {"state_dir": str(tmp_path)}, "maintenance": list(blocks)})


def _down(store, now: datetime) -> None:
    for name in ("public.orders", "public.items"):
        store.record_table(name, name.split(".")[1], last_sync=iso(now - timedelta(seconds=5)), rows=1)
    store.put(
        "source", {"down": True, "kind": "database", "database": "down", "last_error": "connection refused"}
    )
    store.put("agent", {"running": True, "heartbeat": iso(now), "interval": 30})


@pytest.mark.parametrize(
    ("block", "key"),
    [
        ({"weekdays": ["sunday"], "time": "02:00", "duration": "2h"}, "maintenance[0].weekdays"),
        ({"weekdays": ["sun"], "time": "25:00", "duration": "2h"}, "maintenance[0].time"),
        ({"weekdays": ["sun"], "time": "02:00"}, "maintenance[0].duration"),
        ({"weekdays": ["sun"], "time": "02:00", "duration": "2h", "timezone": "Mars/Olympus"}, "timezone"),
        ({"start": "2026-12-06T22:00"}, "needs end or duration"),
        ({"start": "2026-12-06T22:00", "end": "2026-12-06T21:00"}, "maintenance[0].end: is not after start"),
        ({"start": "soon", "duration": "1h"}, "maintenance[0].start"),
        ({"start": "2026-12-06T22:00", "duration": "1h", "tables": ["public.nope"]}, "public.nope"),
        ({"start": "2026-12-06T22:00", "duration": "1h", "when": "x"}, "maintenance[0].when: unknown key"),
    ],
)
def test_maintenance_bad_windows_are_refused_at_load(tmp_path, block, key):
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, block)
    assert key in str(caught.value)


def test_maintenance_weekly_window_crossing_midnight(tmp_path):
    cfg = _config(
        tmp_path, {"weekdays": ["sun"], "time": "23:00", "duration": "2h", "timezone": "Europe/Berlin"}
    )
    sunday_late = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)  # 23:30 in Berlin, Sunday
    monday_early = datetime(2026, 12, 6, 23, 45, tzinfo=UTC)  # 00:45 in Berlin, Monday
    after = datetime(2026, 12, 7, 0, 1, tzinfo=UTC)  # 01:01 in Berlin
    assert maintenance.active(cfg, None, sunday_late) is not None
    window = maintenance.active(cfg, None, monday_early)
    assert window is not None and window.start == datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
    assert maintenance.active(cfg, None, after) is None
    assert maintenance.upcoming(cfg, None, after).start == datetime(2026, 12, 13, 22, 0, tzinfo=UTC)


def test_maintenance_weekly_window_keeps_local_time_across_daylight_saving(tmp_path):
    cfg = _config(
        tmp_path, {"weekdays": ["sun"], "time": "01:00", "duration": "1h", "timezone": "Europe/Berlin"}
    )
    before = maintenance.upcoming(cfg, None, datetime(2026, 3, 25, tzinfo=UTC))  # Berlin on CET
    after = maintenance.upcoming(cfg, None, datetime(2026, 3, 30, tzinfo=UTC))  # on CEST since the 29th
    assert before.start == datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 01:00 CET
    assert after.start == datetime(2026, 4, 4, 23, 0, tzinfo=UTC)  # 01:00 CEST
    assert after.end - after.start == timedelta(hours=1)


def test_maintenance_overlapping_windows_merge(tmp_path):
    cfg = _config(
        tmp_path,
        {"start": "2026-12-06T22:00Z", "duration": "2h", "reason": "upgrade"},
        {"start": "2026-12-06T23:30Z", "duration": "2h", "reason": "vacuum"},
    )
    [window] = maintenance.windows(cfg, None, datetime(2026, 12, 6, 23, tzinfo=UTC))
    assert (window.start.hour, window.end.hour, window.reason) == (22, 1, "upgrade; vacuum")


def test_maintenance_outage_inside_a_window_then_the_window_ends(tmp_path):
    start = datetime(2026, 12, 6, 22, 0, tzinfo=UTC)
    cfg = _config(tmp_path, {"start": "2026-12-06T22:00Z", "duration": "1h", "reason": "PostgreSQL upgrade"})
    with StateStore(cfg.state_dir) as store:
        _down(store, start + timedelta(minutes=30))
        inside = health.build(cfg, store, start + timedelta(minutes=30))
        _down(store, start + timedelta(minutes=61))
        outside = health.build(cfg, store, start + timedelta(minutes=61))
    assert inside["state"] == "maintenance" and health.EXIT_CODES[inside["state"]] == 1
    assert inside["reason"].startswith("Planned maintenance until 23:00 UTC: PostgreSQL upgrade (")
    assert "connection refused" in inside["reason"]
    assert inside["maintenance"]["active"]["reason"] == "PostgreSQL upgrade"
    assert outside["state"] == "outage" and outside["maintenance"]["active"] is None


def test_maintenance_of_some_tables_leaves_a_whole_source_outage_an_outage(tmp_path):
    cfg = _config(tmp_path, {"start": "2026-12-06T22:00Z", "duration": "1h", "tables": ["public.orders"]})
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    with StateStore(cfg.state_dir) as store:
        _down(store, now)
        assert health.build(cfg, store, now)["state"] == "outage"


def test_maintenance_planned_but_not_active_changes_nothing(tmp_path):
    cfg = _config(tmp_path, {"start": "2026-12-07T22:00Z", "duration": "1h"})
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    with StateStore(cfg.state_dir) as store:
        _down(store, now)
        doc = health.build(cfg, store, now)
    assert doc["state"] == "outage" and doc["maintenance"]["next"]["start"] == "2026-12-07T22:00:00.000000Z"


def _cli(cfg_path, *args):
    return CliRunner().invoke(main, ["--config", str(cfg_path), *args])


def test_maintenance_real_source_down_inside_a_window_then_outage_when_it_ends(own_pg, tmp_path):
    config = sections(
        tmp_path / "state",
        own_pg,
        password_file(tmp_path / "source.password"),
        source={"connect_timeout": "2s"},
        sync={"interval": "60s"},
        notify={"webhook_url": "http://127.0.0.1:9/hooks/T"},  # refused: the messages stay queued
    )
    cfg_path = write_config(
        tmp_path / "appliance.toml", config, [{"name": "public.t", "cursor": "updated_at"}]
    )
    with RunningAgent(cfg_path) as run:
        run.wait_state("ok")
        started = _cli(cfg_path, "maintenance", "start", "--for", "1h", "--reason", "minor upgrade")
        assert started.exit_code == 0 and "maintenance until" in started.output
        listed = _cli(cfg_path, "maintenance", "list")
        assert listed.output.startswith("now until ") and "minor upgrade" in listed.output
        own_pg.stop()
        try:
            doc, _ = run.wait_state("maintenance", reason="Planned maintenance until")
            assert "minor upgrade" in doc["reason"]
            assert _cli(cfg_path, "status").exit_code == 1
            with StateStore(tmp_path / "state", readonly=True) as store:
                told = [row["payload"]["state"] for row in store.outbox()]
            assert told == ["maintenance"]  # one message, and no outage alert
            ended = _cli(cfg_path, "maintenance", "end")
            assert ended.exit_code == 0 and "maintenance ended" in ended.output
            run.wait_state("outage", timeout=5)  # at once: the window is over, the source is not back
        finally:
            own_pg.start()
        run.wait_state("ok")
    with StateStore(tmp_path / "state") as store:
        changes = [e["message"].split(":")[0] for e in store.events(50) if e["kind"] == "state"]
    assert "ok -> maintenance" in changes and "maintenance -> outage" in changes
    with StateStore(tmp_path / "state", readonly=True) as store:
        told = [row["payload"]["state"] for row in store.outbox()]
    assert told[:2] == ["maintenance", "outage"]


def test_maintenance_source_back_inside_the_window_is_ok(tmp_path):
    cfg = _config(tmp_path, {"start": "2026-12-06T22:00Z", "duration": "1h"})
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    with StateStore(cfg.state_dir) as store:
        _down(store, now)
        assert health.build(cfg, store, now)["state"] == "maintenance"
        store.put("source", {"down": False, "database": "up", "tunnel": "direct", "last_error": ""})
        assert health.build(cfg, store, now)["state"] == "ok"


def test_maintenance_cli_refuses_silly_lengths(tmp_path):
    cfg_path = tmp_path / "a.toml"
    cfg_path.write_text(
        f'[appliance]\nstate_dir = "{tmp_path}"\n[source]\nhost = "db"\ndatabase = "d"\nuser = "u"\n'
        '[[tables]]\nname = "public.t"\n'
    )
    for length in ("1s", "30d", "soon"):
        result = _cli(cfg_path, "maintenance", "start", "--for", length)
        assert result.exit_code == 2 and "--for" in result.output
    assert _cli(cfg_path, "maintenance", "end").output.strip() == "no maintenance was started by hand"


def test_maintenance_status_text_shows_the_next_window(tmp_path):
    cfg = _config(tmp_path, {"start": "2026-12-07T22:00Z", "duration": "2h", "reason": "upgrade"})
    now = datetime(2026, 12, 6, 22, 30, tzinfo=UTC)
    with StateStore(cfg.state_dir) as store:
        _down(store, now)
        doc = health.build(cfg, store, now)
    from appliance.health.text import render

    assert "  next maintenance: 7 Dec 22:00 UTC until 8 Dec 00:00 UTC: upgrade" in render(
        doc, now=now, tz=UTC
    )


def test_maintenance_notifications_say_started_and_ended_not_outage():
    from appliance.health.notify import headline

    assert headline("pi", "maintenance", "ok", "Planned maintenance until 23:00 UTC: upgrade") == (
        "pi: maintenance started - Planned maintenance until 23:00 UTC: upgrade"
    )
    assert headline("pi", "ok", "maintenance", "All 2 tables are up to date.") == (
        "pi: maintenance ended, now OK. All 2 tables are up to date."
    )
    assert headline("pi", "outage", "maintenance", "Database unreachable: refused").startswith(
        "pi: OUTAGE - "
    )
