"""The source session is read-only, bounded and single; COPY text is parsed exactly."""

from __future__ import annotations

import uuid

import pytest
from click.testing import CliRunner
from support.tomlconf import RO_PASSWORD, RO_USER
from support.wait import wait_until

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


@pytest.fixture
def own_role(sales):
    """A login role only this test uses, so its sessions are this test's and no one else's."""
    role = f"ro_{uuid.uuid4().hex[:12]}"
    sales.sql(f"CREATE ROLE {role} LOGIN PASSWORD '{RO_PASSWORD}'; GRANT pg_read_all_data TO {role}")
    yield role
    sales.sql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
    wait_until(lambda: not sessions_of(sales, role), timeout=30, what=f"the sessions of {role} to end")
    sales.sql(f"DROP ROLE {role}")


def sessions_of(pg, role: str) -> list[int]:
    return [r[0] for r in pg.sql("SELECT pid FROM pg_stat_activity WHERE usename = %s ORDER BY pid", (role,))]


def test_source_holds_one_connection_at_a_time(sales, own_role):
    url = sales.url(own_role, RO_PASSWORD, "sales").replace("postgresql+psycopg2", "postgresql")
    with Source(url) as src:
        (own,) = src.execute("SELECT pg_backend_pid()")[0]
        seen = []
        for _ in range(5):
            src.probe()
            seen.append(sessions_of(sales, own_role))
            src.execute("SELECT count(*) FROM pg_class")
            seen.append(sessions_of(sales, own_role))
    assert seen == [[own]] * 10  # the one session, reused: never a second one beside it
    wait_until(lambda: not sessions_of(sales, own_role), timeout=30, what="the session to end on close")


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


def test_source_clock_is_read_in_the_same_statement_as_the_replay_lag(sales):
    with ro_source(sales) as src:
        before = src.statements
        lag, offset = src.clocks()
        assert src.statements == before + 1
    assert lag is None  # a primary, not a standby
    assert offset is not None and abs(offset) < 5  # the same machine's clock, read over loopback


def test_source_sample_leaves_out_values_too_large_to_hold_many_of(sales):
    from appliance.config import parse
    from appliance.schema.shape import Column
    from appliance.sync.source import SAMPLE_VALUE_BYTES

    sales.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, doc jsonb);"
        "INSERT INTO docs VALUES (1, '{\"a\": 1}'), (3, '{\"c\": 3}');"
        f"INSERT INTO docs SELECT 2, jsonb_build_object('huge', repeat('x', {SAMPLE_VALUE_BYTES}))",
        db="sales",
    )
    source = {"host": "db", "database": "d", "user": "u"}
    table = parse({"source": source, "tables": [{"name": "public.docs"}]}).tables[0]
    with ro_source(sales) as src:
        sample = src.sample(table, Column("doc", "jsonb", "json"))
    assert sorted(sample) == ['{"a": 1}', '{"c": 3}']
