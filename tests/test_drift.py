"""Schema drift through the real tunnel: each change kind classified, policies applied, accept."""

from __future__ import annotations

import json
import sqlite3
import tomllib

import pytest
from click.testing import CliRunner

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


def replica(cfg, sql):
    state = tomllib.loads(cfg.read_text())["appliance"]["state_dir"]
    db = sqlite3.connect(f"{state}/replica.sqlite")
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


@pytest.fixture
def drifting(sales, make_config):
    sales.sql(DDL, db="sales")

    def setup(**table):
        cfg = make_config([{"name": "public.orders", "cursor": "updated_at", **table}])
        assert cli(cfg, "sync", "--once").exit_code == 0
        assert status(cfg)["state"] == "ok"
        return cfg

    return setup


def change(sales, ddl, new_row=True):
    sales.sql(ddl, db="sales")
    if new_row:
        sales.sql("INSERT INTO orders (id, status) VALUES (100, 'new')", db="sales")


CASES = [
    ("column_added", "ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'", False),
    ("type_widened", "ALTER TABLE orders ALTER COLUMN status TYPE text", False),
    ("type_widened", "ALTER TABLE orders ALTER COLUMN status TYPE varchar(40)", False),
    ("type_widened", "ALTER TABLE orders ALTER COLUMN code TYPE bigint", False),
    ("type_widened", "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(14,2)", False),
    ("not_null_dropped", "ALTER TABLE orders ALTER COLUMN status DROP NOT NULL", False),
    ("enum_label_added", "ALTER TYPE mood ADD VALUE 'ecstatic'", False),
    ("column_dropped", "ALTER TABLE orders DROP COLUMN amount", True),
    ("column_renamed", "ALTER TABLE orders RENAME COLUMN amount TO total", True),
    ("type_changed", "ALTER TABLE orders ALTER COLUMN status TYPE varchar(10)", True),
    ("type_changed", "ALTER TABLE orders ALTER COLUMN code TYPE text", True),
    (
        "primary_key_changed",
        "ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id, status)",
        True,
    ),
    ("cursor_changed", "ALTER TABLE orders ALTER COLUMN updated_at TYPE timestamp", True),
]


@pytest.mark.parametrize("kind,ddl,breaking", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_drift_each_change_kind_is_classified_and_evolve_applies_its_policy(
    drifting, sales, kind, ddl, breaking
):
    cfg = drifting()
    change(sales, ddl)
    result = cli(cfg, "sync", "--once")
    doc = status(cfg)
    table = orders(doc)
    kinds = {d["kind"]: d for d in table["drift"]}
    assert kind in kinds, table["drift"]
    assert kinds[kind]["breaking"] is breaking
    assert doc["state"] == "drift" and table["state"] == "drift"
    assert table["frozen"] is breaking
    ids = [r[0] for r in replica(cfg, "SELECT id FROM orders ORDER BY id")]
    if breaking:  # frozen: the last good data stays, nothing new is written
        assert ids == [1, 2, 3, 4, 5]
        assert "frozen" in doc["reason"]
    else:
        assert result.exit_code == 0, result.output
        assert ids == [1, 2, 3, 4, 5, 100]
    if kind == "column_added":  # evolve added and backfilled the column
        assert replica(cfg, "SELECT DISTINCT note FROM orders") == [("x",)]


def test_drift_dropped_and_new_tables(drifting, sales):
    cfg = drifting()
    sales.sql("CREATE TABLE newthing (id int)", db="sales")
    cli(cfg, "sync", "--once")
    doc = status(cfg)
    assert doc["state"] == "drift"
    assert [d["kind"] for d in doc["source"]["drift"]] == ["table_added"]
    assert doc["source"]["drift"][0]["breaking"] is False
    sales.sql("DROP TABLE orders", db="sales")
    cli(cfg, "sync", "--once")
    table = orders(status(cfg))
    assert [d["kind"] for d in table["drift"]] == ["table_dropped"] and table["frozen"]
    assert replica(cfg, "SELECT count(*) FROM orders") == [(5,)]


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


def test_drift_freeze_stops_on_any_change_and_ignore_keeps_syncing(drifting, sales, make_config):
    cfg = drifting(on_drift="freeze")
    change(sales, "ALTER TABLE orders ADD COLUMN note text")
    cli(cfg, "sync", "--once")
    assert orders(status(cfg))["frozen"]
    assert replica(cfg, "SELECT count(*) FROM orders") == [(5,)]


def test_drift_ignore_keeps_syncing_what_fits(drifting, sales):
    cfg = drifting(on_drift="ignore")
    change(sales, "ALTER TABLE orders DROP COLUMN code; ALTER TABLE orders ADD COLUMN note text")
    assert cli(cfg, "sync", "--once").exit_code == 0
    doc = status(cfg)
    table = orders(doc)
    assert doc["state"] == "drift" and not table["frozen"]
    assert {d["kind"] for d in table["drift"]} == {"column_dropped", "column_added"}
    assert replica(cfg, "SELECT count(*) FROM orders") == [(6,)]
    assert "note" not in [r[1] for r in replica(cfg, "PRAGMA table_info(orders)")]


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
