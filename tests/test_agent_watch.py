"""A dead agent is told: the page server notices, queues one message, and one on recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import timedelta

from support.receiver import Receiver
from support.wait import wait_until

from appliance.clock import iso, utcnow
from appliance.config import load, parse
from appliance.health.store import StateStore
from appliance.health.watch import AgentWatcher, watch_agent
from appliance.web.server import PageServer


def _config(tmp_path, url: str):
    return parse(
        {
            "appliance": {"state_dir": str(tmp_path / "state")},
            "source": {"host": "db", "database": "d", "user": "u"},
            "sync": {"interval": "30s"},
            "notify": {"webhook_url": url},
            "tables": [{"name": "public.t"}],
        }
    )


def test_agent_watch_says_down_once_and_up_once(tmp_path):
    cfg = _config(tmp_path, "http://127.0.0.1:9/hook")
    now = utcnow()
    with StateStore(cfg.state_dir) as store:
        assert watch_agent(cfg, store, now) is None  # never ran here: nothing stopped
        store.put("agent", {"running": True, "heartbeat": iso(now), "interval": 30})
        assert watch_agent(cfg, store, now) is None  # first look, running: nothing to say
        later = now + timedelta(seconds=91)  # past max(3 x 30 s, 30 s) without a heartbeat
        assert watch_agent(cfg, store, later) == "down"
        assert watch_agent(cfg, store, later + timedelta(minutes=5)) is None  # once, not per look
        store.put("agent", {"running": True, "heartbeat": iso(later), "interval": 30})
        assert watch_agent(cfg, store, later) == "up"
        assert watch_agent(cfg, store, later) is None
        queued = [row["payload"]["state"] for row in store.outbox()]
        events = [e["message"] for e in store.events(10) if e["kind"] == "agent"]
    assert queued == ["agent down", "agent running"]
    assert events == ["the sync agent runs again", "the sync agent is not running"]


def test_agent_watch_tells_a_real_receiver_when_the_agent_is_killed(sales, make_config, tmp_path):
    receiver = Receiver()
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO t VALUES (1)",
        db="sales",
    )
    cfg_path = make_config([{"name": "public.t", "cursor": "updated_at"}])
    cfg_path.write_text(cfg_path.read_text() + f'\n[notify]\nwebhook_url = "{receiver.url}"\n')
    config = load(cfg_path)
    argv = [sys.executable, "-m", "appliance.cli", "--config", str(cfg_path), "sync", "--interval", "1s"]
    ahead = [timedelta(0)]  # the watcher's clock; moved instead of waiting 30 s
    watcher = AgentWatcher(config, clock=lambda: utcnow() + ahead[0])
    agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _running(config), what="the agent's first heartbeat")
        assert watcher.look() is None
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(timeout=30)
        ahead[0] = timedelta(seconds=31)  # past max(3 x 1 s, 30 s) since its last heartbeat
        assert watcher.look() == "down"
        assert watcher.look() is None
        wait_until(lambda: len(receiver.bodies) == 1, what="the agent-down message")
        assert receiver.bodies[0]["state"] == "agent down" and "AGENT DOWN" in receiver.bodies[0]["text"]
        ahead[0] = timedelta(0)
        agent = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: watcher.look() == "up", what="the agent to be seen running again")
        wait_until(lambda: len(receiver.bodies) == 2, what="the recovery message")
        assert receiver.bodies[1]["state"] == "agent running"
        assert watcher.look() is None and len(receiver.bodies) == 2
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        receiver.close()


def _running(config) -> bool:
    with StateStore(config.state_dir, readonly=True) as store:
        return bool((store.get("agent") or {}).get("running"))


def test_agent_watch_runs_in_the_page_server(tmp_path):
    receiver = Receiver()
    cfg = _config(tmp_path, receiver.url)
    with StateStore(cfg.state_dir) as store:
        old = iso(utcnow() - timedelta(minutes=10))
        store.put("agent", {"running": True, "heartbeat": old, "interval": 30})
    try:
        with PageServer(cfg, "127.0.0.1", 0, watch_every=0.1).start():
            wait_until(lambda: len(receiver.bodies) == 1, what="the page server's agent-down message")
        assert receiver.bodies[0]["state"] == "agent down"
    finally:
        receiver.close()
