"""`appliance status` for people: one time rule, every message once, distinct exit codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.clock import age, local_time, when
from appliance.health.text import render

NOW = datetime(2026, 12, 4, 21, 30, 0, tzinfo=UTC)
CET = timezone(timedelta(hours=1), "CET")


def _iso(seconds_ago: float) -> str:
    return (NOW - timedelta(seconds=seconds_ago)).isoformat().replace("+00:00", "Z")


def test_text_local_time_today_with_zone_else_with_date():
    assert local_time(NOW - timedelta(minutes=3), NOW, CET) == "22:27:00 CET"
    assert local_time(NOW - timedelta(days=2), NOW, CET) == "2 Dec 22:30 CET"
    assert local_time(NOW - timedelta(days=400), NOW, UTC) == "30 Oct 2025 21:30 UTC"


def test_text_ages_never_negative():
    assert age(NOW - timedelta(seconds=125), NOW) == "2m ago"
    assert age(NOW, NOW) == "just now"
    assert age(NOW + timedelta(minutes=5), NOW) == "5m in the future"
    assert when(None, NOW) == "never" and when(_iso(30), NOW, UTC) == "21:29:30 UTC (30s ago)"


def _doc(**over) -> dict:
    error = "could not connect to server: Connection refused"
    doc = {
        "state": "outage",
        "since": _iso(300),
        "reason": f"Database unreachable: {error}",
        "acknowledged": False,
        "agent": {"running": False, "last_heartbeat": _iso(600)},
        "source": {"tunnel": "up", "database": "down", "last_error": error},
        "tables": [
            {"name": "public.orders", "state": "outage", "rows": 12, "last_sync": _iso(400), "error": error},
            {"name": "public.items", "state": "outage", "rows": 3, "last_sync": None, "error": None},
        ],
    }
    return {**doc, **over}


def test_text_says_each_message_once_with_local_times_and_ages():
    text = render(_doc(), now=NOW, tz=CET)
    assert text.count("Connection refused") == 1
    lines = text.splitlines()
    assert lines[0] == "OUTAGE since 22:25:00 CET (5m ago)"
    assert lines[2] == "  agent: NOT RUNNING, last heartbeat 22:20:00 CET (10m ago)"
    assert lines[3] == "  source: tunnel up, database down"
    assert "public.orders: 12 rows, synced 22:23:20 CET (6m ago)" in text
    assert "public.items: 3 rows, never synced" in text
    assert "Z" not in text.replace("CET", "")  # no raw ISO timestamps


def test_text_a_different_error_is_still_shown():
    doc = _doc(reason="public.orders: statement timeout")
    doc["tables"][0]["error"] = "statement timeout"
    text = render(doc, now=NOW, tz=UTC)
    assert "source: tunnel up, database down - could not connect" in text
    assert text.count("statement timeout") == 1


def test_text_agent_that_never_ran():
    doc = _doc(agent={"running": False, "last_heartbeat": None})
    assert "agent: NOT RUNNING: it has never run with this state folder" in render(doc, now=NOW)


def _write(tmp_path, text: str):
    path = tmp_path / "appliance.toml"
    path.write_text(text)
    return path


GOOD = """
[appliance]
state_dir = "{state}"
[source]
host = "127.0.0.1"
port = {port}
database = "sales"
user = "nobody"
password_env = "APPLIANCE_TEST_PW"
statement_timeout = "2s"
[[tables]]
name = "public.orders"
"""


@pytest.fixture
def good(tmp_path, monkeypatch):
    from support.pg import free_port

    monkeypatch.setenv("APPLIANCE_TEST_PW", "x")
    return _write(tmp_path, GOOD.format(state=tmp_path / "state", port=free_port()))


def test_text_status_exit_3_when_the_config_cannot_be_read(tmp_path):
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "missing.toml"), "status"])
    assert result.exit_code == 3 and "does not exist" in result.output and "Traceback" not in result.output


def test_text_schema_diff_exit_3_when_the_source_cannot_be_reached(good):
    result = CliRunner().invoke(main, ["--config", str(good), "schema", "diff"])
    assert result.exit_code == 3, result.output
    assert "Error:" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("command", [["schema", "show"], ["schema", "diff"], ["schema", "accept"]])
def test_text_unknown_table_is_a_usage_error(good, command):
    result = CliRunner().invoke(main, ["--config", str(good), *command, "public.nope"])
    assert result.exit_code == 2, result.output
    assert 'no table "public.nope" is configured; use one of: public.orders' in result.output


BAD_ARGUMENTS = [
    ["status", "--bogus"],
    ["sync", "--interval", "soon"],
    ["sync", "--once", "--interval", "-1s"],
    ["schema", "nope"],
    ["schema", "show", "a", "b"],
    ["ack", "extra"],
    ["doctor", "--bogus"],
    ["demo", "--duration", "forever"],
    ["demo", "--source", "not a url"],
    ["demo", "--port", "http"],
    ["config", "check", "--bogus"],
    ["web", "--port", "eighty"],
    ["indicator", "--interval", "fast"],
    ["indicator", "--once", "--preview", "/nonexistent/folder/oled.png"],
    ["flash", "--device"],
    ["image", "customize"],
    ["nope"],
]


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=lambda a: " ".join(a))
def test_text_no_command_prints_a_traceback_on_bad_arguments(good, args):
    result = CliRunner().invoke(main, ["--config", str(good), *args])
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_text_control_characters_from_the_source_never_reach_the_terminal():
    hostile = "public.\x1b[2J\x1b[31mevil\r\nFAKE: all ok\x00"
    doc = _doc(reason=f"{hostile}: statement timeout")
    doc["tables"][0]["name"] = hostile
    text = render(doc, now=NOW, tz=UTC, color=True)
    assert "\x1b[2J" not in text and "\r" not in text and "\x00" not in text
    assert "\\x1b[2J" in text and "\\r\\nFAKE: all ok" in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    assert "\x1b[31m" in text.splitlines()[0]  # our own colour still works on a terminal


def test_text_log_lines_from_the_cli_stay_one_line_each():
    import logging

    from appliance.cli import _OneLineFormatter

    record = logging.LogRecord(
        "appliance.sync", logging.WARNING, "x", 1, "table %s failed", ("a\nFAKE\x1b[2J",), None
    )
    line = _OneLineFormatter("%(levelname)s %(message)s").format(record)
    assert line == "WARNING table a\\nFAKE\\x1b[2J failed"
