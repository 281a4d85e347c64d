"""Config: the contract's keys load; every problem is reported at once with key and fix."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.clock import parse_duration
from appliance.config import load, parse
from appliance.errors import ConfigError

MINIMAL = {
    "source": {"host": "db", "database": "sales", "user": "ro"},
    "tables": [{"name": "public.orders", "cursor": "updated_at"}],
}


def test_config_minimal_gets_the_documented_defaults():
    cfg = parse(MINIMAL)
    assert cfg.ssh is None and cfg.state_dir == "/var/lib/appliance"
    assert cfg.replica_url == "sqlite:////var/lib/appliance/replica.sqlite"
    assert cfg.sync.interval == 30 and cfg.sync.max_lag == 3600 and cfg.web.port == 8080
    t = cfg.tables[0]
    assert (t.replica_name, t.on_drift, t.soft_delete_action, t.hard_delete_action) == (
        "orders",
        "evolve",
        "keep",
        "delete",
    )
    assert cfg.indicator.i2c_address == 0x3C and cfg.indicator.oled == "ssd1306"


def test_config_example_file_is_valid():
    cfg = load(os.path.join(os.path.dirname(__file__), "..", "image", "appliance.example.toml"), environ={})
    assert cfg.ssh is not None and cfg.ssh.known_hosts
    assert [t.replica_name for t in cfg.tables][:2] == ["orders", "customers"]


def test_config_replica_name_for_other_schemas():
    data = {**MINIMAL, "tables": [{"name": "billing.invoices"}, {"name": "orders"}]}
    assert [t.replica_name for t in parse(data).tables] == ["billing__invoices", "orders"]


def test_config_reports_every_problem_at_once():
    bad = {
        "ssh": {"host": "b", "port": "22", "known_hosts": "/k"},
        "source": {"host": "db", "user": "ro", "statement_timeout": "soon"},
        "sync": {"warn_lag": "2h", "max_lag": "1h", "intervall": "5s"},
        "tables": [
            {"name": "a.b.c"},
            {"name": "public.x", "on_drift": "explode", "primary_key": ["id"], "exclude_columns": ["id"]},
        ],
        "indicator": {"red": 99},
    }
    with pytest.raises(ConfigError) as e:
        parse(bad, "test.toml")
    keys = {p.key for p in e.value.problems}
    assert keys >= {
        "ssh.user",
        "ssh.port",
        "ssh.key_file",
        "source.database",
        "source.statement_timeout",
        "sync.warn_lag",
        "sync.intervall",
        "tables[0].name",
        "tables[1].on_drift",
        "tables[1].exclude_columns",
        "indicator.red",
    }
    text = str(e.value)
    assert text.startswith(f"{len(e.value.problems)} problem(s) in test.toml")
    assert 'did you mean "interval"' in text
    assert all(p.fix for p in e.value.problems)


def test_config_no_tables_is_a_problem():
    with pytest.raises(ConfigError) as e:
        parse({"source": MINIMAL["source"]})
    assert "[[tables]]" in str(e.value)


@pytest.mark.parametrize(
    "text,seconds", [("30s", 30), ("10m", 600), ("1h", 3600), ("2d", 172800), ("500ms", 0.5), ("1.5h", 5400)]
)
def test_config_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_config_check_cli_lists_problems_without_traceback(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text('[source]\nhost = "db"\nport = "x"\n[[tables]]\nname = "t"\n')
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 1
    assert "source.port" in result.output and "source.database" in result.output
    assert "Traceback" not in result.output


def test_config_check_cli_invalid_toml_and_missing_file(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text("[source\nhost=")
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 1 and "not valid TOML" in result.output
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "nope.toml"), "config", "check"])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_config_check_cli_checks_secrets(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("hunter2")
    os.chmod(pw, 0o644)
    path = tmp_path / "a.toml"
    path.write_text(
        f'[source]\nhost = "db"\ndatabase = "d"\nuser = "u"\npassword_file = "{pw}"\n[[tables]]\nname = "t"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 1 and "chmod 600" in result.output
    assert "hunter2" not in result.output
    os.chmod(pw, 0o600)
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "hunter2" not in result.output


def test_config_missing_env_secret_names_the_variable(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        '[source]\nhost = "db"\ndatabase = "d"\nuser = "u"\n'
        'password_env = "APPLIANCE_TEST_NOPE"\n[[tables]]\nname = "t"\n'
    )
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 1 and "APPLIANCE_TEST_NOPE" in result.output
