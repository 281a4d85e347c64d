"""The demo runs the real agent and health code: green, then red during the outage, then green."""

from __future__ import annotations

import sqlite3

from appliance.demo import run_demo
from appliance.health.store import StateStore


def test_demo_shows_ok_outage_ok(tmp_path, capsys):
    run_demo(str(tmp_path), duration=20, outage=(4, 4), drift=(11, 15), tick=0.5, port=0)
    with StateStore(tmp_path / "state") as store:
        changes = [e["message"].split(":")[0] for e in reversed(store.events()) if e["kind"] == "state"]
    assert changes[:5] == [
        "start -> lagging",
        "lagging -> ok",
        "ok -> outage",
        "outage -> ok",
        "ok -> drift",
    ] or changes[:4] == ["start -> ok", "ok -> outage", "outage -> ok", "ok -> drift"]
    assert changes[-1] == "drift -> ok"  # accepted
    assert (tmp_path / "oled.png").stat().st_size > 0  # the real indicator drew the OLED
    out = capsys.readouterr().out
    assert "OUTAGE" in out and "simulated outage" in out and "DRIFT" in out
    assert "demo: status page at http://127.0.0.1:" in out
    assert "lights: red blinking" in out and "lights: green steady" in out
    assert "lights: amber steady" in out
    replica = sqlite3.connect(tmp_path / "state" / "replica.sqlite")
    source = sqlite3.connect(tmp_path / "source.sqlite")
    try:
        # the test customer is filtered out at the source; soft-deleted orders are mirrored
        assert replica.execute("SELECT count(*) FROM customers WHERE is_test").fetchone() == (0,)
        assert replica.execute("SELECT count(*) FROM order_statuses").fetchone() == (4,)
        assert replica.execute("SELECT count(*) FROM orders").fetchone()[0] > 40
        # evolve added the new column and backfilled it
        assert replica.execute("SELECT count(*) FROM orders WHERE coupon = 'WELCOME10'").fetchone()[0] > 0
        assert (
            source.execute("SELECT count(*) FROM orders").fetchone()[0]
            >= replica.execute("SELECT count(*) FROM orders").fetchone()[0]
        )
    finally:
        replica.close()
        source.close()
