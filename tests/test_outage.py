"""Outages against the real sshd and PostgreSQL: detected within 15 s, explained, recovered."""

from __future__ import annotations

import threading
import time

import pytest
from support.pg import PgCluster
from support.sshd import Sshd
from support.tomlconf import RO_PASSWORD, RO_USER

from appliance.config import load
from appliance.health.status import current_status
from appliance.health.store import StateStore
from appliance.sync.agent import Agent
from appliance.sync.link import SourceLink
from appliance.sync.replica import Replica

DETECTION_LIMIT = 15.0


@pytest.fixture
def own_pg():
    cluster = PgCluster().init().start().add_sales(RO_USER, RO_PASSWORD)
    cluster.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL "
        "DEFAULT now()); INSERT INTO t VALUES (1, 'a')",
        db="sales",
    )
    yield cluster
    cluster.destroy()


@pytest.fixture
def own_sshd():
    server = Sshd().start()
    yield server
    server.destroy()


class RunningAgent:
    """The real agent loop in a thread, with a long interval: only probes can be fast."""

    def __init__(self, cfg_path) -> None:
        self.config = load(cfg_path)
        self.store = StateStore(self.config.state_dir)
        self.replica = Replica(self.config.replica_url)
        self.link = SourceLink(self.config)
        self.agent = Agent(self.config, self.link, self.replica, self.store, interval=60, probe_interval=1)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.agent.stopping.set()
        self.thread.join(timeout=60)
        self.link.close()
        self.replica.close()
        self.store.close()

    def wait_state(self, state: str, timeout: float = 60.0, reason: str = "") -> tuple[dict, float]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            doc = current_status(self.config)
            if doc["state"] == state and doc["reason"].startswith(reason):
                return doc, time.monotonic() - t0
            time.sleep(0.1)
        raise AssertionError(f"state never became {state}: {current_status(self.config)}")


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
    with RunningAgent(cfg) as run:
        run.wait_state("ok")
        own_sshd.stop()
        doc, took = run.wait_state("outage")
        assert took < DETECTION_LIMIT
        assert doc["reason"].startswith("Tunnel down") and doc["source"]["tunnel"] == "down"
        own_sshd.start()
        doc, _ = run.wait_state("ok", timeout=90)
        assert doc["source"]["tunnel"] == "up"


def test_outage_database_stopped_is_unreachable(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    with RunningAgent(cfg) as run:
        run.wait_state("ok")
        own_pg.stop()
        doc, took = run.wait_state("outage")
        assert took < DETECTION_LIMIT
        assert doc["reason"].startswith("Database unreachable")
        own_pg.start()
        run.wait_state("ok", timeout=90)


def test_outage_password_changed_is_login_refused(own_pg, own_sshd, tmp_path):
    cfg = config_for(None, own_pg, own_sshd, tmp_path)
    with RunningAgent(cfg) as run:
        run.wait_state("ok")
        own_pg.sql(f"ALTER ROLE {RO_USER} PASSWORD 'rotated-by-dba'")
        # the open session stays valid; the next reconnect is refused
        own_pg.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'appliance'"
        )
        doc, took = run.wait_state("outage", reason="Login refused")
        assert took < DETECTION_LIMIT
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
        None, own_pg, own_sshd, tmp_path, sync={"interval": "60s", "warn_lag": "2s", "max_lag": "4s"}
    )
    with RunningAgent(cfg) as run:
        run.wait_state("ok")
    config = load(cfg)  # the agent is stopped now: its data ages
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline and "outage" not in seen:
        state = current_status(config)["state"]
        if not seen or seen[-1] != state:
            seen.append(state)
        time.sleep(0.1)
    assert seen == ["ok", "lagging", "outage"]
    doc = current_status(config)
    assert doc["agent"]["running"] is False and "max_lag" in doc["reason"]
