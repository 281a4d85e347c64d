"""The source session is read-only, bounded and single; COPY text is parsed exactly."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from support.tomlconf import RO_PASSWORD, RO_USER

from appliance.cli import main
from appliance.errors import LoginError, SourceError
from appliance.sync.source import Source


def ro_source(pg, password=RO_PASSWORD, timeout=60.0) -> Source:
    return Source(
        pg.url(RO_USER, password, "sales").replace("postgresql+psycopg2", "postgresql"),
        statement_timeout=timeout,
    )


def test_source_write_through_the_session_fails(sales):
    sales.sql("CREATE TABLE t (id int)", db="sales")
    with ro_source(sales) as src:
        with pytest.raises(SourceError) as e:
            src.execute("INSERT INTO t VALUES (1)")
        assert "read-only" in str(e.value)
        with pytest.raises(SourceError):
            src.execute("SET default_transaction_read_only = off; INSERT INTO t VALUES (1)")
    assert sales.sql("SELECT count(*) FROM t", db="sales") == [(0,)]


def test_source_session_settings_are_bounded(sales):
    with ro_source(sales, timeout=7) as src:
        rows = dict(
            src.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('statement_timeout', "
                "'default_transaction_read_only', 'application_name', 'TimeZone', "
                "'idle_in_transaction_session_timeout')"
            )
        )
    assert rows == {
        "statement_timeout": "7000",
        "default_transaction_read_only": "on",
        "application_name": "appliance",
        "TimeZone": "UTC",
        "idle_in_transaction_session_timeout": "60000",
    }


def test_source_statement_timeout_is_enforced(sales):
    with ro_source(sales, timeout=0.3) as src:
        with pytest.raises(SourceError) as e:
            src.execute("SELECT pg_sleep(5)")
    assert "statement_timeout" in str(e.value)


def test_source_holds_one_connection_at_a_time(sales):
    with ro_source(sales) as src:
        for _ in range(5):
            src.probe()
        count = sales.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'appliance'")[0][0]
    assert count == 1


def test_source_wrong_password_is_a_login_error(sales):
    with pytest.raises(LoginError) as e:
        ro_source(sales, password="wrong").connect()
    assert "refused the login" in str(e.value) and "source.password_file" in str(e.value)
    assert "wrong" not in str(e.value)


def test_source_wrong_password_through_the_cli(sales, make_config, tmp_path):
    sales.sql("CREATE TABLE t (id int PRIMARY KEY)", db="sales")
    cfg = make_config([{"name": "public.t"}])
    (tmp_path / "source.password").write_text("not-the-password")
    result = CliRunner().invoke(main, ["--config", str(cfg), "sync", "--once"])
    assert result.exit_code == 1
    assert "refused the login" in result.output and "Traceback" not in result.output
    assert "not-the-password" not in result.output
    status = CliRunner().invoke(main, ["--config", str(cfg), "status", "--json"])
    assert status.exit_code == 2 and '"outage"' in status.output
