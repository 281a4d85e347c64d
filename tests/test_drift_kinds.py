"""Each drift kind, made by a real ALTER at the real source and seen by a real pass.

Every case asserts the whole drift list (kind, column, breaking), so a second, unexpected
entry fails it too, and what the default policy (``evolve``) did: still syncing, with a
value that only the new schema allows reaching the replica, or frozen with the last good
data left untouched.
"""

from __future__ import annotations

import pytest
from support.harness import Harness

from appliance.health.status import build

DDL = """
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE orders (id int PRIMARY KEY, status varchar(20) NOT NULL DEFAULT 'new',
    amount numeric(10,2) DEFAULT 1, qty integer DEFAULT 1, code smallint DEFAULT 1,
    ratio real DEFAULT 0.5, feeling mood DEFAULT 'happy',
    updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO orders (id) SELECT generate_series(1, 5);
"""
FIRST_IDS = [1, 2, 3, 4, 5]
NEW_ROW = "INSERT INTO orders (id) VALUES (100)"


@pytest.fixture
def orders(sales, make_config):
    """A synced `public.orders` (cursor updated_at, policy evolve) and its harness."""
    sales.sql(DDL, db="sales")
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        assert build(h.config, h.store)["state"] == "ok"
        yield h


def after(h: Harness, sales, *statements: str) -> tuple[dict, dict]:
    """Run each statement at the source (one transaction each), sync once; return status, table."""
    for sql in statements:
        sales.sql(sql, db="sales")
    h.sync()
    doc = build(h.config, h.store)
    return doc, doc["tables"][0]


def entries(table: dict) -> list[tuple[str, str, bool]]:
    return sorted((d["kind"], d["column"], d["breaking"]) for d in table["drift"])


# (statements at the source, the drift list, the replica check: SQL -> rows)
NON_BREAKING = {
    "column_added": (
        ["ALTER TABLE orders ADD COLUMN note text DEFAULT 'x'", NEW_ROW],
        [("column_added", "note", False)],
        ("SELECT count(*) FROM orders WHERE note = 'x'", [(6,)]),  # added and backfilled
    ),
    "varchar_to_text": (
        [
            "ALTER TABLE orders ALTER COLUMN status TYPE text",
            f"INSERT INTO orders (id, status) VALUES (100, '{'s' * 30}')",
        ],
        [("type_widened", "status", False)],
        ("SELECT status FROM orders WHERE id = 100", [("s" * 30,)]),
    ),
    "varchar_longer": (
        [
            "ALTER TABLE orders ALTER COLUMN status TYPE varchar(40)",
            f"INSERT INTO orders (id, status) VALUES (100, '{'s' * 30}')",
        ],
        [("type_widened", "status", False)],
        ("SELECT status FROM orders WHERE id = 100", [("s" * 30,)]),
    ),
    "int_to_bigint": (
        [
            "ALTER TABLE orders ALTER COLUMN qty TYPE bigint",
            "INSERT INTO orders (id, qty) VALUES (100, 2^40)",
        ],
        [("type_widened", "qty", False)],
        ("SELECT qty FROM orders WHERE id = 100", [(2**40,)]),
    ),
    "real_to_double": (
        [
            "ALTER TABLE orders ALTER COLUMN ratio TYPE double precision",
            "INSERT INTO orders (id, ratio) VALUES (100, 1.2345678901234)",  # a real keeps 1.2345679
        ],
        [("type_widened", "ratio", False)],
        ("SELECT ratio FROM orders WHERE id = 100", [(1.2345678901234,)]),
    ),
    "numeric_precision_up": (
        [
            "ALTER TABLE orders ALTER COLUMN amount TYPE numeric(14,2)",
            "INSERT INTO orders (id, amount) VALUES (100, 123456789012.34)",
        ],
        [("type_widened", "amount", False)],
        ("SELECT amount FROM orders WHERE id = 100", [("123456789012.34",)]),
    ),
    "not_null_dropped": (  # the NULL that now arrives is also a data-check violation
        [
            "ALTER TABLE orders ALTER COLUMN status DROP NOT NULL",
            "INSERT INTO orders (id, status) VALUES (100, NULL)",
        ],
        [("not_null_dropped", "status", False), ("null_in_not_null", "status", False)],
        ("SELECT status FROM orders WHERE id = 100", [(None,)]),
    ),
    "not_null_added": (
        ["ALTER TABLE orders ALTER COLUMN amount SET NOT NULL", NEW_ROW],
        [("not_null_added", "amount", False)],
        ("SELECT amount FROM orders WHERE id = 100", [("1.00",)]),
    ),
    "enum_label_added": (
        [
            "ALTER TYPE mood ADD VALUE 'ecstatic'",  # usable only once committed
            "INSERT INTO orders (id, feeling) VALUES (100, 'ecstatic')",
        ],
        [("enum_label_added", "feeling", False)],
        ("SELECT feeling FROM orders WHERE id = 100", [("ecstatic",)]),
    ),
}


@pytest.mark.parametrize("statements,drift,check", NON_BREAKING.values(), ids=NON_BREAKING.keys())
def test_drift_kinds_non_breaking_change_is_listed_and_evolve_keeps_syncing(
    orders, sales, statements, drift, check
):
    doc, table = after(orders, sales, *statements)
    assert entries(table) == sorted(drift)
    assert (doc["state"], table["state"], table["frozen"]) == ("drift", "drift", False)
    assert [r["id"] for r in orders.rows("orders", "id")] == [*FIRST_IDS, 100]
    db = orders.replica.db
    assert db.execute(check[0]).fetchall() == check[1]


RECREATE_MOOD_WITHOUT_SAD = [
    "ALTER TYPE mood RENAME TO mood_old",
    "CREATE TYPE mood AS ENUM ('happy')",
    "ALTER TABLE orders ALTER COLUMN feeling DROP DEFAULT",
    "ALTER TABLE orders ALTER COLUMN feeling TYPE mood USING feeling::text::mood",
    "DROP TYPE mood_old",
]
BREAKING = {
    "column_dropped": (["ALTER TABLE orders DROP COLUMN amount"], [("column_dropped", "amount", True)]),
    "column_renamed": (
        ["ALTER TABLE orders RENAME COLUMN amount TO total"],
        [("column_renamed", "amount", True)],
    ),
    "varchar_shorter": (
        ["ALTER TABLE orders ALTER COLUMN status TYPE varchar(10)"],
        [("type_changed", "status", True)],
    ),
    "int_to_smallint": (
        ["ALTER TABLE orders ALTER COLUMN qty TYPE smallint"],
        [("type_changed", "qty", True)],
    ),
    "numeric_precision_down": (
        ["ALTER TABLE orders ALTER COLUMN amount TYPE numeric(8,2)"],
        [("type_changed", "amount", True)],
    ),
    "smallint_to_text": (
        ["ALTER TABLE orders ALTER COLUMN code TYPE text"],
        [("type_changed", "code", True)],
    ),
    "enum_label_removed": (RECREATE_MOOD_WITHOUT_SAD, [("enum_label_removed", "feeling", True)]),
    "enum_label_renamed": (
        ["ALTER TYPE mood RENAME VALUE 'sad' TO 'blue'"],
        [("enum_label_added", "feeling", False), ("enum_label_removed", "feeling", True)],
    ),
    "key_column_retyped": (
        ["ALTER TABLE orders ALTER COLUMN id TYPE text"],
        [("primary_key_changed", "id", True), ("type_changed", "id", True)],
    ),
    "primary_key_changed": (
        ["ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id, status)"],
        [("primary_key_changed", "id,status", True)],
    ),
    "cursor_retyped": (
        ["ALTER TABLE orders ALTER COLUMN updated_at TYPE timestamp"],
        [("cursor_changed", "updated_at", True), ("type_changed", "updated_at", True)],
    ),
    "cursor_dropped": (
        ["ALTER TABLE orders DROP COLUMN updated_at"],
        [("column_dropped", "updated_at", True), ("cursor_changed", "updated_at", True)],
    ),
    "cursor_renamed": (
        ["ALTER TABLE orders RENAME COLUMN updated_at TO changed_at"],
        [("column_renamed", "updated_at", True), ("cursor_changed", "updated_at", True)],
    ),
}


@pytest.mark.parametrize("statements,drift", BREAKING.values(), ids=BREAKING.keys())
def test_drift_kinds_breaking_change_is_listed_and_evolve_freezes_the_table(orders, sales, statements, drift):
    before = orders.rows("orders", "id")
    doc, table = after(orders, sales, *statements, NEW_ROW)
    assert entries(table) == sorted(drift)
    assert (doc["state"], table["state"], table["frozen"]) == ("drift", "drift", True)
    assert "frozen" in doc["reason"]
    assert orders.rows("orders", "id") == before  # the last good data, untouched


def test_drift_kinds_renamed_column_names_both_names(orders, sales):
    _, table = after(orders, sales, "ALTER TABLE orders RENAME COLUMN amount TO total")
    assert table["drift"][0]["detail"] == 'column "amount" was renamed to "total" (numeric(10,2))'


# (statements, the table's drift list, the source's drift list as (kind, table), frozen)
TABLES = {
    "table_dropped": (["DROP TABLE orders"], [("table_dropped", "", True)], [], True),
    "table_renamed": (
        ["ALTER TABLE orders RENAME TO orders_v2"],
        [("table_dropped", "", True)],
        [("table_added", "public.orders_v2")],
        True,
    ),
    "table_added": (
        [
            "CREATE TABLE invoices (id int)",
            "CREATE SCHEMA shop",
            "CREATE TABLE shop.elsewhere (id int)",
            NEW_ROW,
        ],
        [],
        [("table_added", "public.invoices")],  # shop is not a configured schema
        False,
    ),
}


@pytest.mark.parametrize("statements,drift,source_drift,frozen", TABLES.values(), ids=TABLES.keys())
def test_drift_kinds_tables_dropped_renamed_and_added(orders, sales, statements, drift, source_drift, frozen):
    doc, table = after(orders, sales, *statements)
    assert entries(table) == drift
    assert [(d["kind"], d["value"]) for d in doc["source"]["drift"]] == source_drift
    assert all(d["breaking"] is False for d in doc["source"]["drift"])
    assert doc["state"] == "drift" and table["frozen"] is frozen
    assert table["state"] == ("drift" if drift else "ok")
    ids = [r["id"] for r in orders.rows("orders", "id")]
    assert ids == (FIRST_IDS if frozen else [*FIRST_IDS, 100])
