"""Announced schema changes: expected drift wakes nobody; a surprise still does."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from click.testing import CliRunner
from support.harness import Harness

from appliance.cli import main
from appliance.config import parse
from appliance.config.windows import parse_change
from appliance.errors import ConfigError
from appliance.health import announce
from appliance.health.store import StateStore
from appliance.schema import contract

ON = date(2026, 12, 10)


@pytest.mark.parametrize(
    ("text", "kinds", "subject"),
    [
        ("add column channel text", ("column_added",), "channel"),
        ("add column channel", ("column_added",), "channel"),
        ("drop column  coupon", ("column_dropped",), "coupon"),
        ("alter column total type numeric(14,2)", ("type_changed", "type_widened"), "total"),
        ("rename column status to state", ("column_renamed",), "status"),
        ("add table public.refunds", ("table_added",), "public.refunds"),
        ("drop table", ("table_dropped",), ""),
    ],
)
def test_announce_change_forms(text, kinds, subject):
    assert parse_change(text) == (kinds, subject)


def test_announce_unknown_change_says_which_forms_exist():
    with pytest.raises(ValueError, match='"add column NAME \\[TYPE\\]"'):
        parse_change("make it faster")


def test_announce_config_entries_are_checked():
    data = {
        "source": {"host": "db", "database": "d", "user": "u"},
        "tables": [{"name": "public.orders"}],
        "announcements": [
            {"table": "public.orders", "change": "add column channel text", "on": "2026-12-10"},
            {"table": "public.nope", "change": "drop table", "on": "2026-12-10"},
            {"table": "public.orders", "change": "teleport", "on": "2026-12-10"},
            {"table": "public.orders", "change": "drop table", "on": "next week"},
        ],
    }
    with pytest.raises(ConfigError) as caught:
        parse(data)
    text = str(caught.value)
    assert (
        "announcements[1].table" in text
        and "announcements[2].change" in text
        and "announcements[3].on" in text
    )
    assert "announcements[0]" not in text


def _orders(sales, make_config):
    sales.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, "
        "updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO orders (id, status) VALUES (1, 'new')",
        db="sales",
    )
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    cfg.write_text(cfg.read_text() + '\n[notify]\nwebhook_url = "http://127.0.0.1:9/hooks/T"\n')
    return cfg


def _outbox_states(h) -> list[str]:
    return [row["payload"]["state"] for row in h.store.outbox()]


@pytest.mark.parametrize(
    ("announced", "arrives", "expected"),
    [
        ("add column channel text", "channel", True),  # announced: no alarm
        (None, "channel", False),  # a surprise
        ("add column coupon text", "channel", False),  # announced, but another column
    ],
)
def test_announce_drift_that_was_announced_is_expected(sales, make_config, announced, arrives, expected):
    cfg = _orders(sales, make_config)
    with Harness(cfg) as h:
        h.sync()
        if announced:
            entry = announce.announce(h.config, h.store, "public.orders", announced, ON, "", "test", _now())
            assert entry["kinds"] == ["column_added"]
        before = _outbox_states(h)
        sales.sql(f"ALTER TABLE orders ADD COLUMN {arrives} text", db="sales")
        h.sync()
        from appliance.health import status as health

        doc = health.build(h.config, h.store)
        [drift] = doc["tables"][0]["drift"]
        after = _outbox_states(h)[len(before) :]
    assert doc["state"] == "drift" and drift["kind"] == "column_added" and drift["column"] == arrives
    assert drift["expected"] is expected
    if expected:
        assert drift["announcement"] == announced and after == []
    else:
        assert "announcement" not in drift and after == ["drift"]


def test_announce_auto_accept_takes_a_harmless_announced_change_by_itself(sales, make_config):
    cfg = _orders(sales, make_config)
    with Harness(cfg) as h:
        h.sync()
        announce.announce(
            h.config, h.store, "public.orders", "add column channel text", ON, "", "t", _now(), True
        )
        sales.sql("ALTER TABLE orders ADD COLUMN channel text", db="sales")
        h.sync()
        from appliance.health import status as health

        doc = health.build(h.config, h.store)
        accepted = [e["message"] for e in h.store.events(20) if e["kind"] == "accept"]
        h.sync()
        names = [r["name"] for r in contract.load(h.config.state_dir, "public.orders")["columns"]]
    assert doc["state"] == "ok" and accepted == [
        "public.orders: drift accepted by announcement (1 change(s))"
    ]
    assert "channel" in names


def test_announce_reminds_the_day_before_once(tmp_path):
    cfg = parse(
        {
            "appliance": {"state_dir": str(tmp_path)},
            "source": {"host": "db", "database": "d", "user": "u"},
            "notify": {"webhook_url": "http://127.0.0.1:9/x"},
            "tables": [{"name": "public.orders"}],
        }
    )
    with StateStore(cfg.state_dir) as store:
        announce.announce(cfg, store, "public.orders", "drop column coupon", ON, "v2", "cli", _now())
        assert announce.remind(cfg, store, ON - timedelta(days=2)) == []
        assert [a["change"] for a in announce.remind(cfg, store, ON - timedelta(days=1))] == [
            "drop column coupon"
        ]
        assert announce.remind(cfg, store, ON - timedelta(days=1)) == []
        states = [row["payload"]["state"] for row in store.outbox()]
    assert states == ["change announced", "change tomorrow"]


def test_announce_cli_and_list(tmp_path):
    path = tmp_path / "a.toml"
    path.write_text(
        f'[appliance]\nstate_dir = "{tmp_path}"\n[source]\nhost = "db"\ndatabase = "d"\nuser = "u"\n'
        '[[tables]]\nname = "public.orders"\n'
    )
    run = CliRunner().invoke
    made = run(
        main,
        [
            "--config",
            str(path),
            "announce",
            "orders",
            "--change",
            "add column channel text",
            "--on",
            "2026-12-10",
        ],
    )
    assert (
        made.exit_code == 0
        and "announced: public.orders: add column channel text on 2026-12-10" in made.output
    )
    assert (
        "2026-12-10  public.orders: add column channel text"
        in run(main, ["--config", str(path), "announce", "--list"]).output
    )
    bad = run(
        main, ["--config", str(path), "announce", "orders", "--change", "teleport", "--on", "2026-12-10"]
    )
    assert bad.exit_code == 1 and "is not a change this appliance can match" in bad.output
    assert (
        run(
            main, ["--config", str(path), "announce", "orders", "--change", "drop table", "--on", "soon"]
        ).exit_code
        == 2
    )


def _now():
    from appliance.clock import utcnow

    return utcnow()
