"""Filters (`where`) and tags (`tag`): test data never reaches the replica; migrated rows marked."""

from __future__ import annotations

import json

from click.testing import CliRunner
from support.harness import Harness

from appliance.cli import main
from appliance.sync.extras import TAG

CUSTOMERS = """
CREATE TABLE customers (id int PRIMARY KEY, email text, is_test boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL, deleted_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT '2024-06-01');
INSERT INTO customers (id, email, is_test, created_at) SELECT g, 'c' || g || '@shop.example',
    g % 10 = 0, '2023-12-30'::timestamptz + g * interval '1 day' FROM generate_series(1, 40) g;
UPDATE customers SET email = 'qa' || id || '@test.example' WHERE id IN (3, 4);
"""
WHERE = "NOT is_test AND email NOT LIKE '%@test.example'"  # a % that psycopg2 must not eat


def ids(h, table="customers"):
    return [r["id"] for r in h.rows(table, "id")]


def source_ids(sales, where=WHERE):
    return [r[0] for r in sales.sql(f"SELECT id FROM customers WHERE {where} ORDER BY id", db="sales")]


def test_filter_keeps_test_data_out_and_removes_rows_that_become_test_data(sales, make_config):
    sales.sql(CUSTOMERS, db="sales")
    cfg = make_config([{"name": "public.customers", "cursor": "updated_at", "where": WHERE}])
    with Harness(cfg) as h:
        h.sync()
        assert ids(h) == source_ids(sales) and 10 not in ids(h) and 3 not in ids(h)
        # flagged as test data with its cursor moving: the incremental pass removes it
        sales.sql("UPDATE customers SET is_test = true, updated_at = now() WHERE id = 5", db="sales")
        h.sync()
        assert 5 not in ids(h)
        # flagged by a script that forgot updated_at: only reconciliation can see it
        sales.sql(
            "UPDATE customers SET is_test = true WHERE id = 6;"
            "UPDATE customers SET is_test = false WHERE id = 20",
            db="sales",
        )
        h.sync()
        assert 6 in ids(h) and 20 not in ids(h)
        result = h.reconcile(factor=4, threshold=4, first=4)
        assert (result.removed, result.refetched) == (1, 1)
        assert ids(h) == source_ids(sales)
        assert result.source_rows == len(source_ids(sales))  # the source side counts kept rows


def test_filter_and_soft_delete_drop_are_honoured_by_reconciliation(sales, make_config):
    sales.sql(CUSTOMERS, db="sales")
    cfg = make_config(
        [
            {
                "name": "public.customers",
                "cursor": "updated_at",
                "where": WHERE,
                "soft_delete": "deleted_at",
                "soft_delete_action": "drop",
            }
        ]
    )
    with Harness(cfg) as h:
        h.sync()
        sales.sql("UPDATE customers SET deleted_at = now() WHERE id IN (7, 8)", db="sales")
        assert h.reconcile().removed == 2
        assert ids(h) == source_ids(sales, WHERE + " AND deleted_at IS NULL")
        assert h.reconcile().removed == 0


def test_tag_marks_migrated_rows_and_follows_its_predicate(sales, make_config):
    sales.sql(CUSTOMERS, db="sales")
    table = {"name": "public.customers", "cursor": "updated_at", "tag": "created_at < '2024-01-01'"}
    cfg = make_config([table])
    with Harness(cfg) as h:
        h.sync()
        tags = {r["id"]: r[TAG] for r in h.rows("customers")}
        assert [i for i, t in tags.items() if t] == [1] and tags[2] == 0  # 2023-12-31 vs 2024-01-01
        assert h.reconcile().refetched == 0  # the tag is the replica's own: not compared
    cfg = make_config([{**table, "tag": "created_at < '2024-01-03' OR email LIKE 'qa%'"}])
    with Harness(cfg) as h:
        sales.sql("UPDATE customers SET updated_at = now() WHERE id = 1", db="sales")
        h.sync()  # the changed predicate re-tags every row, not just the rows read
        tags = {r["id"]: r[TAG] for r in h.rows("customers")}
        assert [i for i, t in tags.items() if t] == [1, 2, 3, 4]
    cfg = make_config([{k: v for k, v in table.items() if k != "tag"}])
    with Harness(cfg) as h:
        sales.sql("UPDATE customers SET updated_at = now() WHERE id = 1", db="sales")
        h.sync()
        assert TAG not in h.rows("customers")[0]  # no tag configured: no column


def test_tag_in_postgres_syntax_is_refused_with_a_fix(sales, make_config):
    sales.sql(CUSTOMERS, db="sales")
    cfg = make_config(
        [
            {
                "name": "public.customers",
                "cursor": "updated_at",
                "tag": "created_at < now() - interval '1 year'",
            }
        ]
    )
    result = CliRunner().invoke(main, ["--config", str(cfg), "sync", "--once"])
    assert result.exit_code == 1
    status = json.loads(CliRunner().invoke(main, ["--config", str(cfg), "status", "--json"]).output)
    error = status["tables"][0]["error"]
    assert "SQLite rejected" in error and "created_at < '2024-01-01'" in error
