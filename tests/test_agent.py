"""The agent as a process: kill -9 mid-copy and resume; the loop; SIGTERM; heartbeat."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tomllib

import pytest
from support.net import refused_port, silent_port
from support.sshd import descendants
from support.wait import wait_until

from appliance.health.store import StateStore

# Starting the agent's and the tunnel child's Python processes, generous for a busy CI box.
STARTUP_SLACK = 20.0


def state_dir(cfg) -> str:
    return tomllib.loads(cfg.read_text())["appliance"]["state_dir"]


def agent(cfg, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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


def copy_progress(cfg) -> tuple[int, list[int], str, list | None, int]:
    """Return (row count, ids, phase, stored initial-copy key, rows_synced_total) of `big`."""
    db = sqlite3.connect(f"{state_dir(cfg)}/replica.sqlite")
    try:
        ids = [r[0] for r in db.execute("SELECT id FROM big ORDER BY id")]
        phase, key, total = db.execute(
            "SELECT phase, initial_key, rows_synced_total FROM _appliance_tables WHERE replica_name = 'big'"
        ).fetchone()
    finally:
        db.close()
    return len(ids), ids, phase, json.loads(key) if key else None, total


def passes_recorded(cfg) -> int:
    path = f"{state_dir(cfg)}/state.sqlite"
    if not os.path.exists(path):
        return 0
    with StateStore(state_dir(cfg), readonly=True) as store:
        return len(store.runs())


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
    total = 150000
    sales.sql(
        "CREATE TABLE big (id int PRIMARY KEY, payload text, updated_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO big SELECT g, md5(g::text), "
        f"'2024-01-01'::timestamptz + g * interval '1 ms' FROM generate_series(1, {total}) g",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.big", "cursor": "updated_at"}], sync={"batch_size": 2000, "lookback": "0s"}
    )
    proc = agent(cfg, "--once")
    wait_until(lambda: copied_so_far(cfg) > 0, what="the first page of the copy")
    children = descendants(proc.pid)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # the tunnel child notices its parent died (stdin EOF) and exits
    wait_until(lambda: not any(alive(c) for c in children), timeout=15, what="the tunnel child to exit")
    # read after the kill, before the restart: the kill landed mid-copy, and the stored
    # cursor is exactly the last row committed (rows and cursor in one transaction)
    n, ids, phase, key, _ = copy_progress(cfg)
    assert 0 < n < total, n
    assert ids == list(range(1, n + 1))
    assert (phase, key) == ("initial", [n])
    proc = agent(cfg, "--once")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    ids, dupes, payloads = checksum_replica(cfg)
    assert dupes == 0
    assert ids == list(range(1, total + 1))
    source = dict(sales.sql("SELECT id, payload FROM big", db="sales"))
    assert payloads == source
    # the restart copied the rest, not everything again (the killed pass never counted its
    # rows; the first incremental page re-reads the one row at the high-water mark)
    _, _, phase, _, synced = copy_progress(cfg)
    assert phase == "incremental" and total - n <= synced <= total - n + 1, (n, synced)


def test_agent_loop_stops_cleanly_on_sigterm(sales, make_config):
    sales.sql(
        "CREATE TABLE big (id int PRIMARY KEY, payload text, updated_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO big VALUES (1, 'a')",
        db="sales",
    )
    cfg = make_config([{"name": "public.big", "cursor": "updated_at"}])
    proc = agent(cfg, "--interval", "0.5s")
    # the first pass has finished before row 2 exists, so only a later pass can copy it
    wait_until(lambda: passes_recorded(cfg) >= 1, what="the first pass")
    assert copied_so_far(cfg) == 1
    sales.sql("INSERT INTO big VALUES (2, 'b')", db="sales")
    wait_until(lambda: copied_so_far(cfg) == 2, what="a later pass of the loop")
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert err.count("pass ok") >= 2  # one summary line per pass
    with StateStore(state_dir(cfg)) as store:
        info = store.get("agent")
        kinds = [e["message"] for e in store.events()]
    assert info["running"] is False and info["stopped"]
    assert kinds[0] == "agent stopped"


@pytest.mark.parametrize(
    "bastion,error",
    [
        (refused_port, "cannot reach bastion 127.0.0.1:{port}: Connection refused. Check ssh.host"),
        (silent_port, "SSH handshake with 127.0.0.1:{port} failed"),  # waits out connect_timeout
    ],
    ids=["refused", "silent"],
)
def test_agent_once_against_unreachable_source_fails_promptly(make_config, bastion, error):
    connect_timeout = 2
    # The probe's own bound: Tunnel.open waits 3 x connect_timeout + 5 s for the tunnel
    # child's answer; add the start of the two processes.
    bound = 3 * connect_timeout + 5 + STARTUP_SLACK
    with bastion() as port:
        cfg = make_config(
            [{"name": "public.big"}], ssh={"port": port, "connect_timeout": f"{connect_timeout}s"}
        )
        proc = agent(cfg, "--once")
        try:
            out, err = proc.communicate(timeout=bound)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            pytest.fail(f"sync --once did not return within the probe's timeout ({bound:.0f}s)")
    message = error.format(port=port)
    assert proc.returncode == 1 and message in err and "Traceback" not in err, err[-2000:]
    with StateStore(state_dir(cfg), readonly=True) as store:
        source, runs = store.get("source"), store.runs()
    assert source is not None, "the outage was not recorded in the state store"
    assert (source["down"], source["kind"], source["tunnel"]) == (True, "tunnel", "down")
    assert source["last_error"].startswith(message)
    assert [r["ok"] for r in runs] == [0] and runs[0]["summary"].startswith("pass failed: " + message)
    status = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "status", "--json"],
        capture_output=True,
        text=True,
    )
    doc = json.loads(status.stdout)
    assert status.returncode == 2 and doc["state"] == "outage"
    assert doc["reason"].startswith("Tunnel down: " + message)


# -- round trips: statements per pass (issue 15) ------------------------------------------

TABLES = 10


def _ten_tables(pg) -> list[dict]:
    for i in range(TABLES):
        pg.sql(
            f"CREATE TABLE t{i} (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL); "
            f"INSERT INTO t{i} SELECT g, 'v' || g, now() - interval '1 day' + g * interval '1 s' "
            "FROM generate_series(1, 50) g",
            db="sales",
        )
    return [{"name": f"public.t{i}", "cursor": "updated_at"} for i in range(TABLES)]


def test_agent_idle_pass_over_ten_tables_needs_at_most_twelve_statements(sales, make_config, caplog):
    from support.harness import Harness

    cfg = make_config(_ten_tables(sales))
    with Harness(cfg) as h:
        h.agent_pass()  # the initial copies
        h.agent_pass()  # the first incremental pass reads each lookback window once
        with caplog.at_level("INFO", logger="appliance.sync.agent"):
            idle = h.agent_pass()
        assert idle.ok and idle.rows == 0, idle.summary()
        assert idle.statements <= 12, idle.summary()
        line = [r.getMessage() for r in caplog.records if r.getMessage().startswith("pass ok")][-1]
        assert line.startswith(f"pass ok: {TABLES} tables, 0 rows changed, {idle.statements} statements")

        # A late commit: an older cursor, inside the lookback window of table t3. The idle
        # pass's window fingerprint changes, so t3 is read again and the row arrives.
        sales.sql(
            "UPDATE t3 SET v = 'late', updated_at = updated_at - interval '1 s' WHERE id = 50", db="sales"
        )
        late = h.agent_pass()
        assert [t.name for t in late.tables if t.written] == ["public.t3"]  # its window, again
        assert h.rows("t3", where="id = 50")[0]["v"] == "late"
        # and a plain change elsewhere, then idle again
        sales.sql("UPDATE t7 SET v = 'new', updated_at = now() WHERE id = 1", db="sales")
        changed = h.agent_pass()
        assert [t.name for t in changed.tables if t.written] == ["public.t7"]
        assert h.rows("t7", where="id = 1")[0]["v"] == "new"
        assert h.agent_pass().rows == 0


def test_agent_statements_reach_metrics_through_the_state_store(sales, make_config):
    from prometheus_client.parser import text_string_to_metric_families
    from support.harness import Harness

    from appliance.config import load
    from appliance.web import create_app

    cfg = make_config(_ten_tables(sales)[:2])
    with Harness(cfg) as h:
        first, second = h.agent_pass(), h.agent_pass()
        counted = h.link.statements
    with StateStore(state_dir(cfg), readonly=True) as store:
        total = store.get("source")["statements_total"]
    # every statement of both passes (and nothing else ran), probes included
    assert total == counted >= first.statements + second.statements > 0
    text = create_app(load(cfg)).test_client().get("/metrics").text
    samples = {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}
    assert samples["appliance_source_statements_total"] == total
