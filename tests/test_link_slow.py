"""The sync over a slow, distant link: the relay (tests/support/relay.py) in front of sshd.

Small on purpose (a few thousand rows, a fast relay setting): these check what the link
must not break - rows equal the source, compression takes bytes off the wire, a link that
stalls without closing becomes an outage and the copy resumes from its last committed
page, doctor still answers. Speed over the link is measured by `scripts/bench link`.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.harness import Harness
from support.relay import Relay
from support.wait import wait_until

from appliance.cli import main
from appliance.health.store import StateStore

DETECTION_TARGET = 15.0  # BRIEF 4.6: a lost link shows as outage within 15 s


@pytest.fixture
def relay(sshd):
    """A 50 Mbit/s link with 10 ms round trips in front of the test sshd."""
    with Relay(sshd.port, mbit=50, delay=0.005, lifetime=600) as r:
        yield r


def through(relay: Relay, sshd, tmp_path: Path) -> dict:
    """Return the [ssh] settings that reach sshd through the relay (host key pinned there)."""
    kind, blob = sshd.host_pub()
    known = tmp_path / "known_hosts_relay"
    known.write_text(f"[127.0.0.1]:{relay.port} {kind} {blob}\n")
    return {"port": relay.port, "known_hosts": str(known)}


def _orders(pg, n: int, noise: bool = False) -> None:
    # noise: md5 text compresses only ~2x, so a small copy still takes a few seconds at 1 Mbit/s
    note = "md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text)" if noise else "'note ' || g"
    pg.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, note text, total numeric(12,2), "
        "updated_at timestamptz NOT NULL); "
        f"INSERT INTO orders SELECT g, (ARRAY['new','paid','shipped'])[1 + g % 3], {note}, g * 1.25, "
        "now() - interval '1 day' + g * interval '1 s' FROM generate_series(1, {n}) g".replace("{n}", str(n)),
        db="sales",
    )


def _source_rows(pg) -> list[tuple]:
    rows = pg.sql("SELECT id, status, note, total FROM orders ORDER BY id", db="sales")
    return [tuple(str(v) for v in r) for r in rows]


def _replica_rows(path: str) -> list[tuple]:
    db = sqlite3.connect(path)
    try:
        return [
            tuple(str(v) for v in r)
            for r in db.execute("SELECT id, status, note, total FROM orders ORDER BY id")
        ]
    finally:
        db.close()


@pytest.mark.parametrize("compression", [True, False], ids=["compressed", "plain"])
def test_link_slow_copy_equals_the_source(sales, make_config, sshd, relay, tmp_path, compression):
    _orders(sales, 3000)
    cfg = make_config(
        [{"name": "public.orders", "cursor": "updated_at"}],
        ssh={**through(relay, sshd, tmp_path), "compression": compression},
        sync={"batch_size": 500},
    )
    with Harness(cfg) as h:
        h.sync()
        assert h.link.tunnel.compression == ("zlib@openssh.com" if compression else "none")
        down = relay.bytes_down
        sales.sql("UPDATE orders SET status = 'paid', updated_at = now() WHERE id % 100 = 0", db="sales")
        h.sync()
        assert _replica_rows(h.replica.path) == _source_rows(sales)
    # What the copy downloaded: the text of 3000 rows is ~150 kB; zlib takes most of it off.
    limit = 100_000 if compression else 10**9
    assert 0 < down < limit, f"{down} bytes came down the link"
    if not compression:
        assert down > 150_000


def _state_dir(cfg: Path) -> str:
    return tomllib.loads(cfg.read_text())["appliance"]["state_dir"]


def _progress(cfg: Path) -> tuple[int, int]:
    """Return (rows in the replica's orders, rows_synced_total) as the agent committed them."""
    path = f"{_state_dir(cfg)}/replica.sqlite"
    if not os.path.exists(path):
        return 0, 0
    db = sqlite3.connect(path)
    try:
        n = db.execute("SELECT count(*) FROM orders").fetchone()[0]
        total = db.execute(
            "SELECT rows_synced_total FROM _appliance_tables WHERE replica_name = 'orders'"
        ).fetchone()
        return n, total[0] if total else 0
    except sqlite3.OperationalError:
        return 0, 0
    finally:
        db.close()


def _state(cfg: Path) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "status", "--json"],
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout) if out.stdout.strip() else {}


def test_link_stall_is_an_outage_and_the_copy_resumes(sales, make_config, sshd, tmp_path):
    rows = 4000
    _orders(sales, rows, noise=True)
    with Relay(sshd.port, mbit=1, delay=0.01, lifetime=600) as slow:  # ~4 s for the whole copy
        cfg = make_config(
            [{"name": "public.orders", "cursor": "updated_at"}],
            ssh={**through(slow, sshd, tmp_path), "keepalive": "6s"},
            sync={"batch_size": 250, "probe_interval": "1s", "lookback": "0s"},
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--interval", "1s"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until(lambda: _progress(cfg)[0] > 0, 60, "the first committed page")
            slow.stall()  # sockets stay open: no FIN, no RST, nothing at all
            stalled_at = _progress(cfg)[0]
            assert stalled_at < rows, "the copy finished before the stall: make it slower"
            # The target itself is the deadline (keepalive 6 s: silence noticed after 6 s).
            doc = wait_until(
                lambda: (d := _state(cfg)).get("state") == "outage" and d, DETECTION_TARGET, "outage"
            )
            assert doc["source"]["tunnel"] == "down", doc
            slow.resume()
            wait_until(lambda: _progress(cfg)[0] == rows, 120, "the copy to finish after the stall")
            wait_until(lambda: _state(cfg).get("state") == "ok", 60, "state ok again")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    n, synced = _progress(cfg)
    # Resumed, not restarted: the passes that finished (the total counts only those) wrote
    # the rows after the stall's last committed page, plus each later pass's re-read of the
    # newest row (lookback 0s); starting over would have written all of them again.
    assert n == rows and synced <= rows - stalled_at + 20, (synced, stalled_at, err[-2000:])
    assert _replica_rows(f"{_state_dir(cfg)}/replica.sqlite") == _source_rows(sales)
    with StateStore(_state_dir(cfg), readonly=True) as store:
        events = [e["message"] for e in store.events(200)]
    # the tunnel child said why: the link went silent (stalled), not merely "closed"
    assert any("went silent" in m for m in events) or "went silent" in err, err[-2000:]


def test_link_doctor_over_a_distant_link(sales, make_config, sshd, tmp_path):
    _orders(sales, 10)
    with Relay(sshd.port, mbit=10, delay=0.05, lifetime=300) as far:  # 100 ms round trips
        cfg = make_config(
            [{"name": "public.orders", "cursor": "updated_at"}], ssh=through(far, sshd, tmp_path)
        )
        result = CliRunner().invoke(main, ["--config", str(cfg), "doctor"])
    lines = {line.split(":")[0].split()[-1]: line for line in result.output.splitlines() if ":" in line}
    for name in ("ssh", "database", "tables"):
        assert lines[name].startswith("ok"), result.output
    assert lines["compression"].startswith("ok") and "zlib@openssh.com" in lines["compression"], result.output


def test_link_doctor_says_when_the_bastion_declines_compression(sales, make_config):
    from support.sshd import Sshd

    _orders(sales, 10)
    server = Sshd()
    config = server.dir / "sshd_config"
    config.write_text(config.read_text() + "Compression no\n")
    server.start()
    try:
        os.chmod(server.client_key, 0o600)
        ssh = {
            "port": server.port,
            "known_hosts": str(server.known_hosts),
            "key_file": str(server.client_key),
        }
        cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], ssh=ssh)
        result = CliRunner().invoke(main, ["--config", str(cfg), "doctor"])
    finally:
        server.destroy()
    line = [x for x in result.output.splitlines() if " compression: " in x][0]
    assert line.startswith("-") and "declined compression" in line, result.output
    assert "Compression yes" in result.output  # the fix, on the line after
