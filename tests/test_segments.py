"""Key ranges of the reconciliation (sync/segments.py): float keys that are not numbers."""

from __future__ import annotations

from support.harness import Harness

from appliance.schema.shape import Column
from appliance.sync.segments import Side

FLOAT_KEY = [Column("k", "double precision", "float", False)]


def test_segments_float_keys_sort_as_the_source_orders_them():
    side = Side(lambda sql, params: [], "f", FLOAT_KEY, [])
    keys = [("NaN",), (1.5,), ("Infinity",), ("-Infinity",), (-7.0,), (0.0,)]
    assert sorted(keys, key=side.order) == [("-Infinity",), (-7.0,), (0.0,), (1.5,), ("Infinity",), ("NaN",)]


def test_segments_reconciliation_finds_real_changes_of_infinite_float_keys(sales, make_config):
    sales.sql(
        "CREATE TABLE f (k float8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO f VALUES ('-Infinity', 'a'), ('Infinity', 'b'), ('NaN', 'c');"
        "INSERT INTO f SELECT g / 4.0, 'x' FROM generate_series(-3000, 3000) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.f", "cursor": "updated_at"}], tunnel=False)
    with Harness(cfg) as h:
        h.sync()
        h.reconcile()  # the first one hashes every row
        quiet = h.reconcile()
        assert (quiet.removed, quiet.refetched) == (0, 0), quiet
        # changes the cursor cannot see: a delete, and an update that keeps updated_at
        sales.sql(
            "DELETE FROM f WHERE k = '-Infinity'; UPDATE f SET v = 'changed' WHERE k = 'NaN';"
            "DELETE FROM f WHERE k = 2.5",
            db="sales",
        )
        found = h.reconcile()
        assert (found.removed, found.refetched) == (2, 1), found
        rows = {r["k"]: r["v"] for r in h.rows("f")}
        assert "-Infinity" not in rows and 2.5 not in rows
        assert rows["NaN"] == "changed" and rows["Infinity"] == "b"
        assert len(rows) == 6001 - 1 + 2  # the numbers, one deleted, Infinity and NaN
        again = h.reconcile()
        assert (again.removed, again.refetched) == (0, 0), again


def test_segments_ranges_cut_at_every_key_put_infinite_keys_on_the_same_side(sales, make_config):
    """Cut points at every key (threshold 1): a point '-Infinity' must bound the same rows
    on both sides, or a range empty at the source would remove replica rows."""
    sales.sql(
        "CREATE TABLE f (k float8 PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO f VALUES ('-Infinity', 'a'), ('Infinity', 'b'), ('NaN', 'c');"
        "INSERT INTO f SELECT g, 'x' FROM generate_series(-20, 20) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.f", "cursor": "updated_at"}], tunnel=False)
    with Harness(cfg) as h:
        h.sync()
        sales.sql("UPDATE f SET v = 'y'", db="sales")  # every range differs: cut to single keys
        first = h.reconcile(factor=2, threshold=1, first=4)
        assert (first.removed, first.refetched) == (0, 44), first
        again = h.reconcile(factor=2, threshold=1, first=4)
        assert (again.removed, again.refetched) == (0, 0), again
        assert {r["v"] for r in h.rows("f")} == {"y"}
