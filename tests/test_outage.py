"""Outages against the real sshd and PostgreSQL: detected by the probe, explained, recovered.

How fast is measured by tests/bench/bench_outage.py; here the agent's passes are an hour
apart, so within the tests' generous deadlines only the probe can notice an outage.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.running import RunningAgent
from support.sshd import Sshd
from support.tomlconf import RO_USER
from support.wait import wait_until

from appliance.clock import iso, parse_iso
from appliance.config import load
from appliance.health.status import current_status

PASS_INTERVAL = 3600.0  # longer than any deadline below: a detection is the probe's


@pytest.fixture
def own_sshd():
    server = Sshd().start()
    yield server
    server.destroy()


def config_for(make_config, pg, sshd, tmp_path, **kw):
    from support.tomlconf import password_file, sections, write_config

    sshd.client_key.chmod(0o600)
    config = sections(
        tmp_path / "state",
        pg,
        password_file(tmp_path / "source.password"),
        sshd,
        ssh={"connect_timeout": "3s"},
        source={"connect_timeout": "3s"},
        sync={"interval": "60s"},
    )
    config.update(kw)
    return write_config(tmp_path / "appliance.toml", config, [{"name": "public.t", "cursor": "updated_at"}])


def test_outage_tunnel_cut_is_detected_then_recovers(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    with RunningAgent(cfg, interval=PASS_INTERVAL) as run:
        run.wait_state("ok")
        own_sshd.stop()
        doc, _ = run.wait_state("outage")
        assert doc["reason"].startswith("Tunnel down") and doc["source"]["tunnel"] == "down"
        own_sshd.start()
        doc, _ = run.wait_state("ok", timeout=90)
        assert doc["source"]["tunnel"] == "up"


def test_outage_database_stopped_is_unreachable(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    with RunningAgent(cfg, interval=PASS_INTERVAL) as run:
        run.wait_state("ok")
        own_pg.stop()
        doc, _ = run.wait_state("outage")
        assert doc["reason"].startswith("Database unreachable")
        own_pg.start()
        run.wait_state("ok", timeout=90)


def test_outage_password_changed_is_login_refused(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    with RunningAgent(cfg, interval=PASS_INTERVAL) as run:
        run.wait_state("ok")
        own_pg.sql(f"ALTER ROLE {RO_USER} PASSWORD 'rotated-by-dba'")
        # the open session stays valid; the next reconnect is refused
        own_pg.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'appliance'"
        )
        doc, _ = run.wait_state("outage", reason="Login refused")
        assert "source.password_file" in doc["reason"]
        assert "rotated-by-dba" not in str(doc)


def test_outage_host_key_changed_never_connects(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    own_sshd.stop()
    own_sshd.regenerate_host_key()
    own_sshd.start()
    with RunningAgent(cfg) as run:
        doc, _ = run.wait_state("outage")
        assert doc["reason"].startswith("Host key changed") and "HOST KEY CHANGED" in doc["reason"]
        assert run.replica.states() == []  # nothing was read through an unverified host


def test_outage_lag_makes_lagging_then_outage_when_the_agent_stops(own_pg, own_sshd, tmp_path):
    cfg = config_for(
        None, own_pg, own_sshd, tmp_path, sync={"interval": "60s", "warn_lag": "10m", "max_lag": "1h"}
    )
    with RunningAgent(cfg) as run:
        run.wait_state("ok")
    # The agent is stopped now and its data ages: read the same state store with a reader's
    # clock moved on (build takes `now`) instead of waiting for the thresholds.
    config = load(cfg)
    synced = parse_iso(current_status(config)["tables"][0]["last_sync"])
    docs = {m: current_status(config, now=synced + timedelta(minutes=m)) for m in (1, 11, 61)}
    assert [(docs[m]["state"], docs[m]["agent"]["running"]) for m in (1, 11, 61)] == [
        ("ok", False),
        ("lagging", False),
        ("outage", False),
    ]
    lagging, outage = docs[11], docs[61]
    assert lagging["reason"].startswith("public.t is ") and "warn_lag" in lagging["reason"]
    assert lagging["since"] == iso(synced + timedelta(minutes=10))  # when warn_lag was crossed
    assert outage["reason"].startswith("public.t has not synced for ") and "max_lag" in outage["reason"]
    assert outage["tables"][0]["lag_seconds"] == pytest.approx(61 * 60, abs=1)


def test_outage_lag_that_grows_during_a_long_pass_is_recorded_before_the_pass_ends(sales, make_config):
    # The second pass reads a view that has turned slow (about 12 s): warn_lag passes while
    # it runs, and the event (and its notification) must not wait for the pass to end.
    sales.sql(
        "CREATE TABLE n (g int); INSERT INTO n SELECT generate_series(1, 3000);"
        "CREATE VIEW slow AS SELECT g, CASE WHEN EXISTS (SELECT 1 FROM n WHERE g = 0) "
        "THEN pg_sleep(0.004) END IS NULL AS quick FROM n",
        db="sales",
    )
    cfg = make_config([{"name": "public.slow"}], sync={"warn_lag": "3s", "max_lag": "1h", "batch_size": 100})
    with RunningAgent(cfg, interval=1) as run:
        wait_until(lambda: len(run.store.runs()) >= 1, timeout=60)
        sales.sql("INSERT INTO n VALUES (0)", db="sales")  # a new table would be drift, not lag
        # A pass ends with the table just synced (ok): only a judgement made during the pass
        # can see it lagging.
        wait_until(
            lambda: any("-> lagging" in e["message"] for e in run.store.events(50) if e["kind"] == "state"),
            timeout=60,
        )
        reading = sales.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'appliance' "
            "AND xact_start IS NOT NULL",
            db="sales",
        )
        assert reading == [(1,)]  # the slow read is still going on
