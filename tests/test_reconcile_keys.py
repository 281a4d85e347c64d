"""Reconciliation by keys: which keys exist, compared through key digests, real PostgreSQL
through the real tunnel into real SQLite (the comparison of whole rows: test_reconcile)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

from support.harness import Harness

from appliance.clock import iso, utcnow
from appliance.schema.shape import Column
from appliance.sync.extras import DELETED
from appliance.sync.segments import ReplicaSide, SourceSide, key_digest

EXTREMES = [
    -(2**63),
    -(2**63) + 1,
    -2147483648,
    -2147483647,
    -1,
    0,
    1,
    48271,
    2147483646,
    2147483647,
    2**63 - 1,
]


def table(sales, n: int, kind: str = "bigint", start: int = 1) -> None:
    """Rows an hour apart: outside the lookback window of each other, so a row changed
    without its cursor stays as it was in the replica until a comparison of rows."""
    sales.sql(
        f"CREATE TABLE orders (id {kind} PRIMARY KEY, status text, updated_at timestamptz NOT NULL)",
        db="sales",
    )
    sales.sql(
        f"INSERT INTO orders SELECT g, 'new', '2024-01-01'::timestamptz + g * interval '1 hour' "
        f"FROM generate_series({start}, {start + n - 1}) g",
        db="sales",
    )


def ids(h) -> list[int]:
    return [r["id"] for r in h.rows("orders", "id")]


def source_ids(sales) -> list[int]:
    return [r[0] for r in sales.sql("SELECT id FROM orders ORDER BY id", db="sales")]


def test_the_key_digest_is_the_same_integer_on_both_sides(sales):
    """The digest is computed by each database's own arithmetic: a key near either end of
    bigint, or a negative one, must give the same integer in PostgreSQL and SQLite."""
    key = [Column("id", "bigint", "integer", False)]
    pg_side = SourceSide(lambda sql, p, local=None: [], "t", key, [], key).compare_keys()
    lite_side = ReplicaSide(lambda sql, p: [], "t", key, [], "_h").compare_keys()
    values = ", ".join(f"('{k}'::bigint)" for k in EXTREMES)
    pg = [r[0] for r in sales.sql(f"SELECT {pg_side.digest()} FROM (VALUES {values}) AS t(id)", db="sales")]
    db = sqlite3.connect(":memory:")
    lite = [
        db.execute(f"SELECT {lite_side.digest()} FROM (SELECT ? AS id)", (k,)).fetchone()[0] for k in EXTREMES
    ]
    assert pg == lite == [key_digest(k) for k in EXTREMES]  # and Python's, for missing_key
    assert all(abs(d) < 2**31 for d in pg)


def test_keys_find_hard_deletes_in_one_statement_and_crowded_ones_in_two(sales, make_config):
    table(sales, 20000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        clean = h.reconcile(kind="keys")
        assert (clean.kind, clean.removed, clean.refetched, clean.keys) == ("keys", 0, 0, 0)
        assert clean.queries == 1 and clean.hashed == 0  # one statement; no row hashed here
        # 39 ranges of 513 keys: one delete in each of these ranges (the last key too)
        gone = [17, 4242, 9999, 15001, 20000]
        sales.sql(f"DELETE FROM orders WHERE id IN ({', '.join(map(str, gone))})", db="sales")
        h.sync()
        alone = h.reconcile(kind="keys")
        assert (alone.removed, alone.refetched) == (5, 0)
        assert ids(h) == source_ids(sales)
        # each range's counts and key offsets named its one missing key, and its digest
        # confirmed it: nothing but the ranges' figures crossed the wire
        assert alone.queries == 1 and alone.keys == 0 and alone.transferred <= 41
        assert (alone.source_rows, alone.replica_rows) == (19995, 20000)
        assert "reconciled by keys, 19995 source rows" in alone.summary()
        assert "; 1 statement, " in alone.summary()
        sales.sql("DELETE FROM orders WHERE id IN (1, 2, 9000)", db="sales")  # two in one range
        crowded = h.reconcile(kind="keys")
        assert (crowded.removed, crowded.refetched) == (3, 0)
        assert ids(h) == source_ids(sales)
        assert crowded.queries == 2 and 0 < crowded.keys <= 513  # that range's keys, as runs


def test_keys_take_no_key_on_figures_that_only_look_like_one_missing(sales, make_config):
    """Two rows gone and one new that the cursor did not see, in one range: the replica
    holds one row more, and the offsets name 100 + 250 - 150 = 200, a key both sides hold.
    A digest linear in the key would confirm it (48271 * 200 = 48271 * (100 + 250 - 150),
    with no wrap below 2^31) and delete a live row; the squared digest does not, so the
    range's keys are compared one by one."""
    table(sales, 20000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql("DELETE FROM orders WHERE id = 150", db="sales")
        assert h.reconcile(kind="keys").removed == 1
        sales.sql(
            "DELETE FROM orders WHERE id IN (100, 250);"
            "INSERT INTO orders VALUES (150, 'late', '2000-01-01')",  # stamped long ago: unseen
            db="sales",
        )
        h.sync()
        result = h.reconcile(kind="keys")
        assert (result.removed, result.refetched) == (2, 1)
        assert ids(h) == source_ids(sales) and 200 in ids(h)
        assert result.queries == 2


def test_keys_find_rows_missing_beyond_both_ends_and_negative_keys(sales, make_config):
    table(sales, 3000, kind="int", start=-1500)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        # rows the cursor missed (stamped long ago), below the smallest and above the
        # largest key the replica holds, and a delete in the negative keys
        sales.sql(
            "INSERT INTO orders VALUES (-2147483648, 'old', '2000-01-01'), "
            "(2147483647, 'old', '2000-01-01'), (-1600, 'old', '2000-01-01'); "
            "DELETE FROM orders WHERE id IN (-1400, -3)",
            db="sales",
        )
        h.sync()
        result = h.reconcile(kind="keys", threshold=50)
        assert (result.removed, result.refetched) == (2, 3)
        assert ids(h) == source_ids(sales)


def test_keys_leave_rows_changed_without_their_cursor_to_the_comparison_of_rows(sales, make_config):
    table(sales, 500)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql(
            "UPDATE orders SET status = 'migrated' WHERE id = 5; DELETE FROM orders WHERE id = 6", db="sales"
        )
        keys = h.reconcile(kind="keys")
        assert (keys.removed, keys.refetched) == (1, 0)
        assert h.rows("orders", where="id = 5")[0]["status"] == "new"
        rows = h.reconcile(kind="rows")
        assert (rows.kind, rows.removed, rows.refetched) == ("rows", 0, 1)
        assert h.rows("orders", where="id = 5")[0]["status"] == "migrated"


def test_a_key_that_is_not_one_integer_is_compared_by_rows(sales, make_config):
    sales.sql(
        "CREATE TABLE orders (id text PRIMARY KEY, status text, updated_at timestamptz NOT NULL);"
        "INSERT INTO orders SELECT 'o' || g, 'new', now() FROM generate_series(1, 300) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql("DELETE FROM orders WHERE id = 'o7'", db="sales")
        result = h.reconcile(kind="keys")
        assert (result.kind, result.removed) == ("rows", 1)


def test_keys_respect_where_and_tombstones(sales, make_config):
    table(sales, 2000)
    cfg = make_config(
        [
            {
                "name": "public.orders",
                "cursor": "updated_at",
                "where": "id % 2 = 0",
                "hard_delete_action": "tombstone",
            }
        ]
    )
    with Harness(cfg) as h:
        h.sync()
        assert len(ids(h)) == 1000
        sales.sql("DELETE FROM orders WHERE id IN (10, 11, 1500)", db="sales")
        result = h.reconcile(kind="keys")
        assert (result.removed, result.refetched) == (2, 0)  # 11 was never here
        assert sorted(r["id"] for r in h.rows("orders") if r[DELETED]) == [10, 1500]
        again = h.reconcile(kind="keys")  # tombstoned rows are not compared
        assert (again.removed, again.refetched, again.keys) == (0, 0, 0)


def test_the_agent_compares_keys_between_comparisons_of_rows(sales, make_config):
    table(sales, 300)
    cfg = make_config(
        [{"name": "public.orders", "cursor": "updated_at"}],
        sync={"reconcile_every": "10m", "verify_every": "1d"},
    )

    def age(field: str, by: timedelta) -> None:
        record = h.store.get("reconciled:public.orders")
        record[field] = iso(utcnow() - by)
        h.store.put("reconciled:public.orders", record)

    with Harness(cfg) as h:
        assert h.agent_pass().ok  # the initial copy counts as both
        sales.sql(
            "UPDATE orders SET status = 'migrated' WHERE id = 5; DELETE FROM orders WHERE id = 6", db="sales"
        )
        age("at", timedelta(minutes=11))
        assert h.agent_pass().ok
        record = h.store.get("reconciled:public.orders")
        assert (record["kind"], record["removed"], record["refetched"]) == ("keys", 1, 0)
        verified = record["verified_at"]
        assert verified  # carried over from the initial copy
        age("at", timedelta(minutes=11))
        age("verified_at", timedelta(days=1, minutes=1))
        assert h.agent_pass().ok
        record = h.store.get("reconciled:public.orders")
        assert (record["kind"], record["removed"], record["refetched"]) == ("rows", 0, 1)
        assert record["verified_at"] == record["at"]
        assert h.rows("orders", where="id = 5")[0]["status"] == "migrated"


def test_keys_cut_once_more_when_differences_are_everywhere(sales, make_config):
    table(sales, 120_000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        # a delete in nearly every first-level range: settling them all would download
        # every key (120,000); one more level downloads the differing small ranges only
        sales.sql("DELETE FROM orders WHERE id % 450 = 7", db="sales")
        result = h.reconcile(kind="keys")
        assert result.removed == 120_000 // 450 + 1 and result.refetched == 0
        assert ids(h) == source_ids(sales)
        assert result.queries <= 4 and result.keys < 30_000  # 267 ranges cut: two statements of 256
