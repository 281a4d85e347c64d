"""Schema drift through the real tunnel: the policies, accepting, the data checks.

Each change kind and its classification: test_drift_kinds.py.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib

import pytest
from click.testing import CliRunner
from support.pg import free_port

from appliance.cli import main

DDL = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE statuses (code text PRIMARY KEY);
INSERT INTO statuses VALUES ('new'), ('paid');
CREATE TABLE orders (id int PRIMARY KEY, status varchar(20) NOT NULL, amount numeric(10,2),
    code smallint, feeling mood, doc jsonb, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders SELECT g, 'new', g, g, 'happy', '{"a": 1, "b": 2}', now()
    FROM generate_series(1, 5) g;
"""


def cli(cfg, *args):
    return CliRunner().invoke(main, ["--config", str(cfg), *args])


def status(cfg) -> dict:
    return json.loads(cli(cfg, "status", "--json").output)


def orders(status_doc) -> dict:
    return next(t for t in status_doc["tables"] if t["name"] == "public.orders")


def state_dir(cfg) -> str:
    return tomllib.loads(cfg.read_text())["appliance"]["state_dir"]


def replica(cfg, sql):
    db = sqlite3.connect(f"{state_dir(cfg)}/replica.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def replica_columns(cfg) -> list[str]:
    return [r[1] for r in replica(cfg, "PRAGMA table_info(orders)")]


LIVE_COLUMNS = (
    "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position"
)


def outbox(cfg) -> list[dict]:
    """Return the notifications queued so far, sent or not (the state store's outbox)."""
    db = sqlite3.connect(f"{state_dir(cfg)}/state.sqlite")
    try:
        return [json.loads(r[0]) for r in db.execute("SELECT payload FROM outbox ORDER BY id")]
    finally:
        db.close()


@pytest.fixture
def drifting(sales, make_config):
    sales.sql(DDL, db="sales")

    def setup(notify=False, **table):
        cfg = make_config([{"name": "public.orders", "cursor": "updated_at", **table}])
        if notify:  # a webhook nobody listens on: a message stays in the outbox
            with cfg.open("a") as f:
                f.write(f'\n[notify]\nwebhook_url = "http://127.0.0.1:{free_port()}/hook"\n')
        assert cli(cfg, "sync", "--once").exit_code == 0
        assert status(cfg)["state"] == "ok"
        return cfg

    return setup


def change(sales, ddl, new_row=True):
    sales.sql(ddl, db="sales")
    if new_row:
        sales.sql("INSERT INTO orders (id, status) VALUES (100, 'new')", db="sales")


def test_drift_accept_clears_it_and_breaking_change_is_copied_again(drifting, sales):
    cfg = drifting()
    change(sales, "ALTER TABLE orders RENAME COLUMN amount TO total")
    cli(cfg, "sync", "--once")
    assert orders(status(cfg))["frozen"]
    diff = cli(cfg, "schema", "diff")
    assert diff.exit_code == 1 and "column_renamed" in diff.output and "+" in diff.output
    assert cli(cfg, "schema", "accept", "public.orders").output.startswith("accepted")
    assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    assert doc["state"] == "ok" and orders(doc)["drift"] == []
    cols = [r[1] for r in replica(cfg, "PRAGMA table_info(orders)")]
    assert "total" in cols and "amount" not in cols
    assert [r[0] for r in replica(cfg, "SELECT id FROM orders ORDER BY id")] == [1, 2, 3, 4, 5, 100]
    assert cli(cfg, "schema", "diff").exit_code == 0
    events = cli(cfg, "status").output
    assert "OK" in events


POLICY_CHANGES = {  # a non-breaking and a breaking change: (statements, the drift entry)
    "column_added": ("ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'", ("column_added", "note", False)),
    "column_dropped": ("ALTER TABLE orders DROP COLUMN code", ("column_dropped", "code", True)),
}


@pytest.mark.parametrize("ddl,entry", POLICY_CHANGES.values(), ids=POLICY_CHANGES.keys())
def test_drift_freeze_stops_the_table_on_any_change_and_notifies(drifting, sales, ddl, entry):
    cfg = drifting(on_drift="freeze", notify=True)
    columns = replica_columns(cfg)
    change(sales, ddl)
    assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    table = orders(doc)
    assert [(d["kind"], d["column"], d["breaking"]) for d in table["drift"]] == [entry]
    assert (doc["state"], table["state"], table["frozen"]) == ("drift", "drift", True)
    assert replica(cfg, "SELECT id FROM orders ORDER BY id") == [(i,) for i in range(1, 6)]
    assert replica_columns(cfg) == columns  # nothing applied: the last good data as it was
    assert [m["state"] for m in outbox(cfg)] == ["drift"]


IGNORED = {  # (statements, the drift list, replica check after the pass: SQL -> rows)
    "column_added": (
        "ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'",
        [("column_added", "note", False)],
        ("SELECT count(*) FROM pragma_table_info('orders') WHERE name = 'note'", [(0,)]),  # not applied
    ),
    "column_dropped": (  # the dropped column keeps its last values; the new row has none
        "ALTER TABLE orders DROP COLUMN code",
        [("column_dropped", "code", True)],
        ("SELECT id, code FROM orders WHERE id IN (1, 100)", [(1, 1), (100, None)]),
    ),
    "column_retyped": (  # smallint -> text no longer fits the INTEGER column: left as it was
        "ALTER TABLE orders ALTER COLUMN code TYPE text; "
        "UPDATE orders SET code = 'x', status = 'paid', updated_at = now() WHERE id = 1",
        [("type_changed", "code", True)],
        ("SELECT id, status, code FROM orders WHERE id IN (1, 100)", [(1, "paid", 1), (100, "new", None)]),
    ),
}


@pytest.mark.parametrize("ddl,drift,check", IGNORED.values(), ids=IGNORED.keys())
def test_drift_ignore_keeps_syncing_what_fits_quietly_until_accepted(drifting, sales, ddl, drift, check):
    cfg = drifting(on_drift="ignore", notify=True)
    change(sales, ddl)
    assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    table = orders(doc)
    assert sorted((d["kind"], d["column"], d["breaking"]) for d in table["drift"]) == drift  # listed
    assert (doc["state"], table["state"], table["frozen"]) == ("drift", "drift", False)
    assert replica(cfg, "SELECT id FROM orders ORDER BY id") == [(i,) for i in (1, 2, 3, 4, 5, 100)]
    assert replica(cfg, check[0]) == check[1]
    assert outbox(cfg) == []  # no notification
    assert cli(cfg, "sync", "--once").exit_code == 0
    assert status(cfg)["state"] == "drift"  # still drift on the next pass, until accepted
    assert cli(cfg, "schema", "accept", "public.orders").output.startswith("accepted")
    assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    assert doc["state"] == "ok" and orders(doc)["drift"] == []
    live = [r[0] for r in sales.sql(LIVE_COLUMNS, db="sales")]
    assert replica_columns(cfg) == live  # the accepted schema is applied now
    assert len(replica(cfg, "SELECT id FROM orders")) == 6


UNSYNCABLE = {  # no policy syncs through these: ignore freezes too (and stays quiet)
    "cursor_dropped": (
        "ALTER TABLE orders DROP COLUMN updated_at",
        [("column_dropped", "updated_at"), ("cursor_changed", "updated_at")],
    ),
    "key_retyped": (  # the pass used to crash on the text key going into the INTEGER key
        "ALTER TABLE orders ALTER COLUMN id TYPE text",
        [("primary_key_changed", "id"), ("type_changed", "id")],
    ),
}


@pytest.mark.parametrize("ddl,drift", UNSYNCABLE.values(), ids=UNSYNCABLE.keys())
def test_drift_ignore_still_freezes_a_table_it_cannot_sync(drifting, sales, ddl, drift):
    cfg = drifting(on_drift="ignore", notify=True)
    change(sales, ddl)
    assert cli(cfg, "sync", "--once").exit_code == 0
    table = orders(status(cfg))
    assert sorted((d["kind"], d["column"]) for d in table["drift"]) == drift
    assert table["frozen"] and table["state"] == "drift"
    assert replica(cfg, "SELECT id FROM orders ORDER BY id") == [(i,) for i in range(1, 6)]
    assert outbox(cfg) == []


def test_drift_data_checks_catch_values_with_examples(drifting, sales):
    cfg2 = drifting(allowed_values={"status": ["new", "paid"]})
    # the contract says status is NOT NULL; the source relaxes it and a NULL arrives
    sales.sql(
        """ALTER TABLE orders ALTER COLUMN status DROP NOT NULL;
                 INSERT INTO orders (id, status, doc) VALUES (7, NULL, '{"a": 1, "c": 3}');
                 INSERT INTO orders (id, status) VALUES (8, 'refunded-<script>')""",
        db="sales",
    )
    cli(cfg2, "sync", "--once")
    table = orders(status(cfg2))
    found = {d["kind"]: d for d in table["drift"]}
    assert "id=7" in found["null_in_not_null"]["detail"]
    assert "'refunded-<script>'" in found["value_not_allowed"]["detail"]
    assert found["json_keys_changed"]["value"] == "c"
    assert table["state"] == "drift" and not table["frozen"]
    assert replica(cfg2, "SELECT count(*) FROM orders WHERE id IN (7, 8)") == [(2,)]
    cli(cfg2, "schema", "accept")
    sales.sql("INSERT INTO orders (id, status, doc) VALUES (9, 'new', '{\"c\": 1}')", db="sales")
    cli(cfg2, "sync", "--once")
    kinds = {d["kind"] for d in orders(status(cfg2))["drift"]}
    assert "json_keys_changed" not in kinds  # the accepted key joined the contract


def test_drift_lookup_table_values(drifting, sales):
    cfg = drifting(lookup={"status": "public.statuses.code"})
    sales.sql("INSERT INTO orders (id, status) VALUES (50, 'paid'), (51, 'lost')", db="sales")
    cli(cfg, "sync", "--once")
    found = {d["kind"]: d for d in orders(status(cfg))["drift"]}
    assert "'lost'" in found["value_not_allowed"]["detail"]


def test_drift_none_after_restart_vacuum_and_analyze(drifting, sales):
    cfg = drifting()
    sales.sql("VACUUM ANALYZE orders", db="sales")
    for _ in range(2):
        assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    assert doc["state"] == "ok" and orders(doc)["drift"] == [] and doc["source"]["drift"] == []


def test_drift_schema_show_for_people_and_scripts(drifting):
    cfg = drifting()
    shown = cli(cfg, "schema", "show", "public.orders")
    assert "status" in shown.output and "character varying(20)" in shown.output
    assert "NOT NULL" in shown.output and "enum: sad, happy" in shown.output
    doc = json.loads(cli(cfg, "schema", "show", "--json").output)
    assert doc["public.orders"]["primary_key"] == ["id"]
    assert doc["public.orders"]["json_keys"] == {"doc": ["a", "b"]}
