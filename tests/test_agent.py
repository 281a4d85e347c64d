"""The agent as a process: kill -9 mid-copy and resume; the loop; SIGTERM; heartbeat."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib

from support.sshd import descendants


def state_dir(cfg) -> str:
    return tomllib.loads(cfg.read_text())["appliance"]["state_dir"]


def agent(cfg, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def poll(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def copied_so_far(cfg) -> int:
    path = f"{state_dir(cfg)}/replica.sqlite"
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM big").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "zombie" not in f.read().lower()
    except FileNotFoundError:
        return False


def checksum_replica(cfg):
    db = sqlite3.connect(f"{state_dir(cfg)}/replica.sqlite")
    try:
        ids = [r[0] for r in db.execute("SELECT id FROM big ORDER BY id")]
        dupes = db.execute("SELECT count(*) - count(DISTINCT id) FROM big").fetchone()[0]
        payloads = dict(db.execute("SELECT id, payload FROM big"))
        return ids, dupes, payloads
    finally:
        db.close()


def test_agent_kill_9_mid_copy_then_restart_equals_source(sales, make_config):
    sales.sql(
        "CREATE TABLE big (id int PRIMARY KEY, payload text, updated_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO big SELECT g, md5(g::text), "
        "'2024-01-01'::timestamptz + g * interval '1 ms' FROM generate_series(1, 150000) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.big", "cursor": "updated_at"}], sync={"batch_size": 2000})
    proc = agent(cfg, "--once")
    n = poll(lambda: 0 < copied_so_far(cfg) < 150000 and copied_so_far(cfg), what="a partial copy")
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert n < 150000
    # the tunnel child notices its parent died (stdin EOF) and exits
    poll(lambda: not any(alive(c) for c in children), timeout=15, what="the tunnel child to exit")
    proc = agent(cfg, "--once")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    ids, dupes, payloads = checksum_replica(cfg)
    assert dupes == 0
    assert ids == list(range(1, 150001))
    source = dict(sales.sql("SELECT id, payload FROM big", db="sales"))
    assert payloads == source


def test_agent_loop_stops_cleanly_on_sigterm(sales, make_config):
    sales.sql(
        "CREATE TABLE big (id int PRIMARY KEY, payload text, updated_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO big VALUES (1, 'a')",
        db="sales",
    )
    cfg = make_config([{"name": "public.big", "cursor": "updated_at"}])
    proc = agent(cfg, "--interval", "0.5s")
    poll(lambda: copied_so_far(cfg) == 1, what="the first pass")
    sales.sql("INSERT INTO big VALUES (2, 'b')", db="sales")
    poll(lambda: copied_so_far(cfg) == 2, what="a later pass of the loop")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert err.count("pass ok") >= 2  # one summary line per pass
    from appliance.health.store import StateStore

    with StateStore(state_dir(cfg)) as store:
        info = store.get("agent")
        kinds = [e["message"] for e in store.events()]
    assert info["running"] is False and info["stopped"]
    assert kinds[0] == "agent stopped"


def test_agent_once_against_unreachable_source_fails_promptly(sales, make_config):
    from support.pg import free_port

    cfg = make_config([{"name": "public.big"}], ssh={"port": free_port(), "connect_timeout": "3s"})
    t0 = time.monotonic()
    proc = agent(cfg, "--once")
    out, err = proc.communicate(timeout=60)
    took = time.monotonic() - t0
    assert proc.returncode == 1 and "cannot reach bastion" in err and "Traceback" not in err
    assert took < 15
    status = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "status", "--json"],
        capture_output=True,
        text=True,
    )
    assert status.returncode == 2 and "Tunnel down" in status.stdout
