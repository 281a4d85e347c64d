"""/api/status is the document of ``appliance status --json``, with names, users, paths and
pids left out (web/redact.py), printed the same way."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.clock import utcnow
from appliance.health import status as health
from appliance.web.redact import redacted, redactor

from .states import fill


@pytest.fixture
def frozen(monkeypatch):
    """Stop health's clock, so the CLI and the page compute lag at the same instant."""
    now = utcnow()
    monkeypatch.setattr(health, "utcnow", lambda: now)
    return now


def _cli_status(config) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--config", config.path, "status", "--json"])
    return result.exit_code, result.output


@pytest.mark.parametrize("state", ["ok", "lagging", "outage", "first boot", "agent down"])
def test_api_status_matches_the_cli_exactly(config, client, frozen, state):
    if state == "agent down":
        fill(config, "ok", agent_ago=900, now=frozen - timedelta(seconds=1))
    elif state != "first boot":
        fill(config, state, now=frozen - timedelta(seconds=1))
    code, printed = _cli_status(config)
    response = client.get("/api/status")
    assert response.status_code == 200 and response.mimetype == "application/json"
    expected = redacted(json.loads(printed), redactor(config))
    assert response.json == expected and response.text == json.dumps(expected, indent=2) + "\n"
    assert "pid" not in response.json["agent"]
    assert code == health.EXIT_CODES[response.json["state"]]


def test_api_status_follows_a_write_at_once(config, client, frozen):
    fill(config, "ok", now=frozen)
    assert client.get("/api/status").json["state"] == "ok"
    fill(config, "outage", now=frozen)
    assert client.get("/api/status").json["state"] == "outage"


def test_api_status_unreadable_store_is_a_503_with_the_reason(config, client, tmp_path):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    (state_dir / "state.sqlite").write_text("this is not a database")
    response = client.get("/api/status")
    assert response.status_code == 503 and "error" in response.json
    assert client.get("/readyz").status_code == 503
    assert client.get("/").status_code == 503
    assert client.get("/livez").status_code == 200
