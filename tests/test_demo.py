"""The demo runs the real agent, health, page and indicator: green, red, green, amber, green."""

from __future__ import annotations

import socket
import sqlite3

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.config import load
from appliance.demo.source import CuttableLink
from appliance.demo.story import MARKER, Story, fresh_workdir, run_demo, write_config
from appliance.errors import ApplianceError
from appliance.health.store import StateStore
from appliance.sync.source import Source


def test_demo_tells_the_whole_story_by_itself(tmp_path, capsys):
    work = tmp_path / "demo"
    run_demo(
        str(work), duration=30, outage=(4, 4), drift_after=3, accept_after=3, tick=0.5, port=0, auto=True
    )
    with StateStore(work / "state") as store:
        changes = [e["message"].split(":")[0] for e in reversed(store.events()) if e["kind"] == "state"]
        acks = [e["message"] for e in store.events() if e["kind"] == "ack"]
    assert changes[0] in ("start -> lagging", "start -> ok")
    assert [c for c in changes if c != "start -> lagging" and c != "lagging -> ok"] == [
        *(["start -> ok"] if changes[0] == "start -> ok" else []),
        "ok -> outage",
        "outage -> ok",
        "ok -> drift",
        "drift -> ok",
    ]
    assert acks == ["outage acknowledged by demo"]
    assert (work / "oled.png").stat().st_size > 0  # the real indicator drew the OLED
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("demo: open the status page: http://127.0.0.1:")
    assert any(line.startswith("demo: the token the page asks for") for line in lines)
    assert f"appliance --config {work / 'appliance.toml'} status" in out
    assert "The source goes down" in out and "The source is back" in out
    assert "adds orders.coupon" in out and "The story is over" in out
    assert "lights: red blinking" in out and "lights: green steady" in out and "lights: amber steady" in out
    state_lines = [line for line in lines if line.startswith("[")]
    assert len(state_lines) == len(set(state_lines)), "a status line was repeated"
    replica = sqlite3.connect(work / "state" / "replica.sqlite")
    try:
        # the test customer is filtered out at the source; soft-deleted orders are mirrored
        assert replica.execute("SELECT count(*) FROM customers WHERE is_test").fetchone() == (0,)
        assert replica.execute("SELECT count(*) FROM order_statuses").fetchone() == (4,)
        assert replica.execute("SELECT count(*) FROM orders").fetchone()[0] > 40
        # evolve added the new column and backfilled it
        assert replica.execute("SELECT count(*) FROM orders WHERE coupon = 'WELCOME10'").fetchone()[0] > 0
    finally:
        replica.close()
    # the CLI works against the demo with the config it wrote
    result = CliRunner().invoke(main, ["--config", str(work / "appliance.toml"), "status"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("OK since ")


def _story(tmp_path, auto: bool, said: list[str]) -> Story:
    work = fresh_workdir(tmp_path / "demo")
    token = work / "api.token"
    token.write_text("t0ken\n")
    token.chmod(0o600)
    config = load(write_config(work, 8080, token))
    link = CuttableLink(Source(f"sqlite:///{tmp_path / 'none.sqlite'}"))
    return Story(config, link, None, auto, said.append, outage=(10, 5))


def _doc(state: str, acknowledged: bool = False) -> dict:
    return {"state": state, "acknowledged": acknowledged, "tables": []}


def test_demo_waits_for_the_newcomer_to_acknowledge(tmp_path):
    said: list[str] = []
    story = _story(tmp_path, auto=False, said=said)
    story.advance(9, _doc("ok"))
    assert not story.link.cut.is_set() and said == []
    story.advance(10, _doc("ok"))
    assert story.link.cut.is_set() and "goes down" in said[-1]
    for now in (11, 30, 300):  # long past the outage's length: still waiting for a person
        story.advance(now, _doc("outage"))
    assert story.link.cut.is_set()
    assert [s for s in said if "Press Acknowledge" in s] == [
        f">>> Press Acknowledge on the page (or run: appliance --config {story.config.path} ack)."
    ]
    story.advance(301, _doc("outage", acknowledged=True))
    assert not story.link.cut.is_set() and "source is back" in said[-1]


def test_demo_second_run_starts_afresh_and_keep_continues(tmp_path):
    work = fresh_workdir(tmp_path / "demo")
    (work / "state").mkdir()
    (work / "state" / "state.sqlite").write_text("old state")
    assert fresh_workdir(work, keep=True) == work and (work / "state" / "state.sqlite").exists()
    fresh_workdir(work)
    assert sorted(p.name for p in work.iterdir()) == [MARKER]


def test_demo_refuses_to_empty_a_folder_that_is_not_its_own(tmp_path):
    (tmp_path / "thesis.tex").write_text("years of work")
    with pytest.raises(ApplianceError, match="not the demo's"):
        fresh_workdir(tmp_path)
    assert (tmp_path / "thesis.tex").read_text() == "years of work"


def test_demo_refuses_to_start_without_its_page(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path / "d"), "--port", str(port)])
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output
    assert "Traceback" not in result.output
