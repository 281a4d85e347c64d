"""Config values that are well typed but harmful are refused at load, each with key and fix."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.config import parse
from appliance.errors import ConfigError

RED_TEAM_WHERE = (
    "true) ; COMMIT; BEGIN READ WRITE; INSERT INTO public.canary VALUES (11); COMMIT; "
    "SELECT 1 FROM public.orders WHERE (true"
)


def _problems(**over) -> str:
    data = {
        "source": {"host": "db", "database": "sales", "user": "ro"},
        "tables": [{"name": "public.orders", "cursor": "updated_at"}],
    }
    for section, values in over.items():
        if section == "table":
            data["tables"] = [{**data["tables"][0], **values}]
        else:
            data[section] = {**data.get(section, {}), **values}
    with pytest.raises(ConfigError) as caught:
        parse(data)
    return str(caught.value)


@pytest.mark.parametrize(
    ("section", "key", "value", "shown"),
    [
        ("source", "statement_timeout", "0s", "0s is outside 1s..1d"),
        ("source", "statement_timeout", "0.5ms", "0.5ms is outside 1s..1d"),
        ("source", "statement_timeout", "2d", "2d is outside 1s..1d"),
        ("sync", "interval", "1ms", "1ms is outside 1s..1d"),
        ("sync", "probe_interval", "0s", "0s is outside 1s..1h"),
        ("sync", "lookback", "7d", "7d is outside 0s..1d"),
    ],
)
def test_bounds_durations_outside_their_range_are_refused(section, key, value, shown):
    text = _problems(**{section: {key: value}})
    assert f"{section}.{key}: {shown}" in text and "choose a duration between" in text


def test_bounds_durations_inside_their_range_load():
    data = {
        "source": {"host": "db", "database": "s", "user": "u", "statement_timeout": "1s"},
        "sync": {"interval": "1s", "probe_interval": "1s", "lookback": "0s", "reconcile_every": "30d"},
        "tables": [{"name": "public.t"}],
    }
    assert parse(data).source.statement_timeout == 1


@pytest.mark.parametrize(
    "url",
    [
        "hooks.example.com/T0K3N-SECRET",
        "ftp://hooks.example.com/T0K3N-SECRET",
        "https:///T0K3N-SECRET",
        "https://hooks.example.com:8x/T0K3N-SECRET",
    ],
)
def test_bounds_webhook_url_needs_a_scheme_and_host_and_is_never_echoed(url):
    text = _problems(notify={"webhook_url": url})
    assert "notify.webhook_url: is not an http:// or https:// URL" in text
    assert "T0K3N-SECRET" not in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("smtp_to", ["ops@example.com\r\nBcc: x@evil.example"]),
        ("smtp_to", ["a@example.com, b@example.com"]),
        ("smtp_to", ["no-at-sign"]),
        ("smtp_to", ["Ops\x00 <ops@example.com>"]),
        ("smtp_from", "me@example.com\nBcc: x@evil.example"),
        ("smtp_host", "mail.example.com\r\nRCPT TO:<x@evil.example>"),
    ],
)
def test_bounds_smtp_settings_with_injections_are_refused(key, value):
    assert f"notify.{key}:" in _problems(notify={key: value})


@pytest.mark.parametrize(
    ("where", "why"),
    [
        (RED_TEAM_WHERE, 'a ")" closes more than it opened'),
        ("true; DELETE FROM orders", 'it holds ";"'),
        ("true) --", 'a ")" closes more than it opened'),
        ("true --", "it holds a comment"),
        ("true /* x */", "it holds a comment"),
        ("(true", "a parenthesis is not closed"),
        ("status = 'open", "a quote is not closed"),
        ("status = $$x$$", 'it holds "$"'),
        ("status = E'\\'; DROP TABLE x; --'", "it holds a backslash"),
        ("status = E'\\''; INSERT INTO t VALUES (1); '", "it holds a backslash"),
    ],
)
def test_bounds_where_must_be_one_expression(where, why):
    text = _problems(table={"where": where})
    assert f"tables[0].where: is not one SQL expression: {why}" in text


@pytest.mark.parametrize(
    "where",
    [
        "NOT is_test",
        "status <> 'it''s; -- not a comment'",
        '"Odd ""name"" (1)" > 3 AND (a IN (1, 2))',
        "email NOT LIKE '%@example.com'",
    ],
)
def test_bounds_real_filters_are_accepted(where):
    data = {
        "source": {"host": "db", "database": "s", "user": "u"},
        "tables": [{"name": "public.t", "where": where, "tag": where}],
    }
    assert parse(data).tables[0].where == where


def test_bounds_addresses_with_display_names_load():
    data = {
        "source": {"host": "db", "database": "s", "user": "u"},
        "notify": {
            "smtp_from": "The Appliance <appliance@example.com>",
            "smtp_to": ["Ops Team <ops@example.com>"],
        },
        "tables": [{"name": "public.t"}],
    }
    assert parse(data).notify.smtp_to == ["Ops Team <ops@example.com>"]


def test_bounds_tag_is_checked_like_where():
    assert "tables[0].tag: is not one SQL expression" in _problems(table={"tag": "1; DROP TABLE t"})


def test_bounds_config_check_refuses_the_red_team_filter(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(
        '[source]\nhost = "db"\ndatabase = "s"\nuser = "u"\n\n[[tables]]\nname = "public.orders"\n'
        f"where = {RED_TEAM_WHERE!r}\n".replace("'", '"', 1).replace("'\n", '"\n')
    )
    result = CliRunner().invoke(main, ["--config", str(path), "config", "check"])
    assert result.exit_code == 1 and "is not one SQL expression" in result.output
    assert "Traceback" not in result.output
