"""Health from the state store: states by lag, source outages, agent liveness, ack, exit codes."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.clock import iso, utcnow
from appliance.config import parse
from appliance.health import status as health
from appliance.health.store import StateStore


@pytest.fixture
def setup(tmp_path):
    cfg = parse(
        {
            "appliance": {"state_dir": str(tmp_path)},
            "source": {"host": "db", "database": "d", "user": "u"},
            "sync": {"warn_lag": "10m", "max_lag": "1h", "interval": "30s"},
            "tables": [{"name": "public.orders"}, {"name": "public.items"}],
        }
    )
    path = tmp_path / "a.toml"
    path.write_text(
        f'[appliance]\nstate_dir = "{tmp_path}"\n[source]\nhost = "db"\n'
        'database = "d"\nuser = "u"\n[sync]\nwarn_lag = "10m"\nmax_lag = "1h"\n'
        '[[tables]]\nname = "public.orders"\n[[tables]]\nname = "public.items"\n'
    )
    return cfg, path


def synced(store, ago: dict[str, float], beat_ago: float = 1):
    now = utcnow()
    for name, seconds in ago.items():
        store.record_table(name, name.split(".")[1], last_sync=iso(now - timedelta(seconds=seconds)), rows=5)
    store.put("source", {"tunnel": "direct", "database": "up", "last_error": "", "down": False})
    store.put("agent", {"running": True, "heartbeat": iso(now - timedelta(seconds=beat_ago)), "interval": 30})


def status(path):
    result = CliRunner().invoke(main, ["--config", str(path), "status", "--json"])
    return result.exit_code, json.loads(result.output)


@pytest.mark.parametrize(
    "ages,state,code",
    [
        ({"public.orders": 5, "public.items": 5}, "ok", 0),
        ({"public.orders": 5, "public.items": 700}, "lagging", 1),
        ({"public.orders": 4000, "public.items": 700}, "outage", 2),
    ],
)
def test_health_state_follows_lag(setup, ages, state, code):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, ages)
    exit_code, doc = status(path)
    assert (doc["state"], exit_code) == (state, code)
    assert {t["name"]: t["state"] for t in doc["tables"]}["public.orders"] in ("ok", state)
    assert doc["agent"]["running"] is True
    if state != "ok":
        assert "warn_lag" in doc["reason"] or "max_lag" in doc["reason"]


def test_health_lagging_since_is_when_the_threshold_was_crossed(setup):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5, "public.items": 900})
    _, doc = status(path)
    since = health.parse_iso(doc["since"])
    expected = utcnow() - timedelta(seconds=900) + timedelta(seconds=600)
    assert abs((since - expected).total_seconds()) < 5


def test_health_dead_agent_is_reported_but_state_follows_data(setup):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5, "public.items": 5}, beat_ago=600)
    code, doc = status(path)
    assert doc["agent"]["running"] is False and doc["state"] == "ok" and code == 0
    text = CliRunner().invoke(main, ["--config", str(path), "status"]).output
    assert "agent: NOT RUNNING, last heartbeat " in text and "(10m ago)" in text


def test_health_source_down_is_an_outage_with_its_reason(setup):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5, "public.items": 5})
        store.put(
            "source",
            {
                "tunnel": "down",
                "database": "down",
                "down": True,
                "last_error": "cannot reach bastion b:22: Connection refused.",
            },
        )
    code, doc = status(path)
    assert code == 2 and doc["state"] == "outage"
    assert "Connection refused" in doc["reason"] and doc["source"]["tunnel"] == "down"


def test_health_ack_marks_the_alert_and_a_new_state_clears_it(setup):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 4000, "public.items": 5})
        health.update(cfg, store)
    assert CliRunner().invoke(main, ["--config", str(path), "ack"]).output.strip() == "acknowledged"
    assert status(path)[1]["acknowledged"] is True
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 700, "public.items": 5})
        health.update(cfg, store)
        events = [e["kind"] for e in store.events()]
    doc = status(path)[1]
    assert doc["state"] == "lagging" and doc["acknowledged"] is False
    assert "ack" in events and events.count("state") == 2


def test_health_empty_store_first_boot_is_lagging_until_the_first_sync(setup):
    # A fresh install whose agent never ran: the state follows the data (BRIEF 9). No data
    # yet is "not synced yet" (lagging); nothing says the source is down, so no outage. That
    # the agent is not running is reported beside the state, not as the state.
    cfg, path = setup
    code, doc = status(path)
    assert doc["agent"] == {"running": False, "last_heartbeat": None, "pid": None}
    assert (doc["state"], code) == ("lagging", 1)
    assert doc["reason"] == "public.orders has not finished its first sync yet."
    assert [(t["name"], t["state"], t["lag_seconds"], t["last_sync"]) for t in doc["tables"]] == [
        ("public.orders", "lagging", None, None),
        ("public.items", "lagging", None, None),
    ]


def test_health_events_are_bounded(setup, monkeypatch):
    cfg, _ = setup
    monkeypatch.setattr("appliance.health.store.EVENTS_KEPT", 50)
    with StateStore(cfg.state_dir) as store:
        for i in range(500):
            store.event("test", f"event {i}")
        count = store.db.execute("SELECT count(*) FROM events").fetchone()[0]
    assert count <= 150


def test_health_damaged_state_store_is_a_clear_error(setup):
    cfg, path = setup
    (cfg.state_path / "state.sqlite").write_bytes(b"this is not a database" * 100)
    result = CliRunner().invoke(main, ["--config", str(path), "status"])
    assert result.exit_code == 3 and "damaged" in result.output and "Traceback" not in result.output


def test_health_times_from_the_future_are_unknown_not_fresh(setup):
    """The Pi has no real-time clock: after it moves back, nothing recorded "later" is fresh."""
    cfg, _ = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": -3600, "public.items": 5}, beat_ago=-3600)
        doc = health.build(cfg, store)
    assert doc["agent"]["running"] is False
    orders = {t["name"]: t for t in doc["tables"]}["public.orders"]
    assert orders["state"] == "lagging" and orders["lag_seconds"] is None
    assert doc["state"] == "lagging" and "the clock moved back" in doc["reason"]


def test_health_a_little_clock_skew_is_still_fresh(setup):
    cfg, _ = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": -20, "public.items": 5}, beat_ago=-20)
        doc = health.build(cfg, store)
    assert doc["agent"]["running"] is True and doc["state"] == "ok"


def test_health_lag_is_not_judged_until_the_clock_is_synchronised(setup):
    cfg, _ = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5000, "public.items": 5})  # would be an outage by lag
        waiting = health.build(cfg, store, clock_synced=False)
        judged = health.build(cfg, store, clock_synced=True)
        unknown = health.build(cfg, store, clock_synced=None)  # no systemd here: counts as synchronised
    assert waiting["state"] == "lagging" and waiting["reason"].startswith("Waiting for the clock")
    assert all(t["lag_seconds"] is None for t in waiting["tables"])
    assert judged["state"] == "outage" and unknown["state"] == "outage"


def test_health_clock_synchronised_asks_the_kernel_only_under_systemd(tmp_path):
    from appliance.clock import synchronised

    assert synchronised(str(tmp_path / "no-systemd")) is None
    assert isinstance(synchronised(str(tmp_path)), bool)  # the kernel's answer, whichever it is


def test_health_a_source_outage_starts_now_not_when_lag_would_age(setup):
    cfg, _ = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5, "public.items": 5})
        store.put("source", {"down": True, "kind": "tunnel", "tunnel": "down", "last_error": "refused"})
        now = utcnow()
        doc = health.build(cfg, store, now)
    assert doc["state"] == "outage" and doc["since"] == iso(now)
    assert all(t["state"] == "outage" for t in doc["tables"])  # the cards say it too


def test_health_a_source_clock_more_than_a_minute_off_is_reported_not_judged(setup):
    cfg, path = setup
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5, "public.items": 5})
        store.put("source", {**store.get("source"), "clock_offset": 20.0})  # within a minute: quiet
        near = health.build(cfg, store)
        store.put("source", {**store.get("source"), "clock_offset": 300.0})
        far = health.build(cfg, store)
        store.put("source", {**store.get("source"), "clock_offset": -7200.0})
        ahead = health.build(cfg, store)
    assert near["source"]["clock_note"] == "" and near["source"]["clock_offset_seconds"] == 20.0
    assert far["state"] == "ok"  # lag compares the Pi's own timestamps: still fresh
    assert far["source"]["clock_note"].startswith("This appliance's clock is 5m behind the source's")
    assert "2h ahead of the source's" in ahead["source"]["clock_note"]
    text = CliRunner().invoke(main, ["--config", str(path), "status"]).output
    assert "  clock: This appliance's clock is 2h ahead of the source's" in text


def test_health_says_one_table_in_the_singular(tmp_path):
    cfg = parse(
        {
            "appliance": {"state_dir": str(tmp_path)},
            "source": {"host": "db", "database": "d", "user": "u"},
            "tables": [{"name": "public.orders"}],
        }
    )
    with StateStore(cfg.state_dir) as store:
        synced(store, {"public.orders": 5})
        assert health.update(cfg, store)["reason"] == "The table is up to date."
