"""History of configured columns: one row per version seen, written with the rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from support.harness import Harness

from appliance.clock import iso, utcnow
from appliance.errors import ReplicaError
from appliance.sync import history as history_mod


def history(h, table="orders__history", order="rowid"):
    return [(r["id"], r["value"], r["cursor_value"]) for r in h.rows(table, order)]


def test_history_keeps_every_version_seen_once(sales, make_config):
    sales.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, amount int, "
        "updated_at timestamptz NOT NULL); INSERT INTO orders VALUES "
        "(1, 'new', 1, '2024-01-01 00:00:01+00'), (2, 'new', 1, '2024-01-01 00:00:02+00')",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.orders", "cursor": "updated_at", "history": ["status"]}], sync={"lookback": "1h"}
    )
    with Harness(cfg) as h:
        h.sync()
        first = h.rows("orders__history", "id")
        assert list(first[0]) == ["id", "column_name", "value", "cursor_value", "seen_at"]
        assert [(r["id"], r["column_name"], r["value"]) for r in first] == [
            (1, "status", "new"),
            (2, "status", "new"),
        ]
        assert first[0]["cursor_value"] == "2024-01-01T00:00:01.000000Z"
        assert first[0]["seen_at"].endswith("Z")
        for status in ("paid", "paid", "new", None):
            sales.sql(
                "UPDATE orders SET status = %s, updated_at = updated_at + interval '1 s' WHERE id = 1",
                (status,),
                db="sales",
            )
            h.sync()
            h.sync()  # the lookback re-reads the row: no new version
        sales.sql(
            "UPDATE orders SET amount = 2, updated_at = updated_at + interval '1 s' WHERE id = 2", db="sales"
        )
        h.sync()  # another column changed: no version of status
        assert history(h) == [
            (1, "new", "2024-01-01T00:00:01.000000Z"),
            (2, "new", "2024-01-01T00:00:02.000000Z"),
            (1, "paid", "2024-01-01T00:00:02.000000Z"),
            (1, "new", "2024-01-01T00:00:04.000000Z"),
            (1, None, "2024-01-01T00:00:05.000000Z"),
        ]
        seen = [r["seen_at"] for r in h.rows("orders__history", "rowid")]
        assert seen == sorted(seen)


def test_history_is_written_in_the_same_transaction_as_the_rows(sales, make_config, monkeypatch):
    sales.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz "
        "NOT NULL DEFAULT now()); INSERT INTO orders VALUES (1, 'new')",
        db="sales",
    )
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at", "history": ["status"]}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql("UPDATE orders SET status = 'paid', updated_at = now() WHERE id = 1", db="sales")

        def broken(*args, **kwargs):
            raise ReplicaError("disk full (simulated)")

        monkeypatch.setattr(h.replica, "upsert", broken)
        with pytest.raises(AssertionError, match="disk full"):
            h.sync()
        assert history(h) == [(1, "new", history(h)[0][2])]  # the version rolled back too
        monkeypatch.undo()
        h.sync()
        assert [v for _, v, _ in history(h)] == ["new", "paid"]
        assert h.rows("orders")[0]["status"] == "paid"


def test_history_of_a_full_refresh_table_with_a_composite_key(sales, make_config):
    sales.sql(
        "CREATE TABLE labels (code text, lang text, label text, PRIMARY KEY (code, lang));"
        "INSERT INTO labels VALUES ('n', 'en', 'new'), ('n', 'de', 'neu')",
        db="sales",
    )
    cfg = make_config([{"name": "public.labels", "history": ["label"]}])
    with Harness(cfg) as h:
        h.sync()
        h.sync()  # refreshed whole again, nothing changed: no new version
        sales.sql("UPDATE labels SET label = 'fresh' WHERE code = 'n' AND lang = 'en'", db="sales")
        h.sync()
        rows = [
            (r["code"], r["lang"], r["value"], r["cursor_value"]) for r in h.rows("labels__history", "rowid")
        ]
        assert sorted(rows[:2]) == [("n", "de", "neu", None), ("n", "en", "new", None)]
        assert rows[2:] == [("n", "en", "fresh", None)]
        # Trimmed by the composite key: only the superseded version of (n, en) goes.
        assert history_mod.trim(h.replica, "labels", iso(utcnow() + timedelta(days=1)), 1000) == 1
        rows = [(r["code"], r["lang"], r["value"]) for r in h.rows("labels__history", "code, lang")]
        assert rows == [("n", "de", "neu"), ("n", "en", "fresh")]


def _orders_with_versions(sales, h) -> None:
    """Sync orders 1..3 (new), then: 1 -> paid -> shipped, 2 -> paid, 3 deleted at the source."""
    h.sync()
    for sql in (
        "UPDATE orders SET status = 'paid', updated_at = now() WHERE id IN (1, 2)",
        "UPDATE orders SET status = 'shipped', updated_at = now() WHERE id = 1",
    ):
        sales.sql(sql, db="sales")
        h.sync()
    sales.sql("DELETE FROM orders WHERE id = 3", db="sales")
    h.reconcile()  # the hard delete reaches the replica: order 3's versions have no row left


@pytest.fixture
def orders(sales, make_config):
    sales.sql(
        "CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz NOT NULL "
        "DEFAULT now()); INSERT INTO orders (id, status) VALUES (1, 'new'), (2, 'new'), (3, 'new')",
        db="sales",
    )
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at", "history": ["status"]}])
    with Harness(cfg) as h:
        _orders_with_versions(sales, h)
        yield h


def test_history_trim_keeps_the_current_versions_and_drops_old_superseded_ones(orders):
    versions = [(1, "new"), (2, "new"), (3, "new"), (1, "paid"), (2, "paid"), (1, "shipped")]
    assert [(i, v) for i, v, _ in history(orders)] == versions
    past = iso(utcnow() - timedelta(days=1))
    assert history_mod.trim(orders.replica, "orders", past, 1000) == 0  # nothing is that old
    future = iso(utcnow() + timedelta(days=1))  # everything seen so far counts as old
    deleted = history_mod.trim(orders.replica, "orders", future, 1000, batch=2)
    # Each order keeps the version it holds now, with the date it was first seen;
    # order 3, gone from the replica, keeps none.
    assert deleted == 4 and [(i, v) for i, v, _ in history(orders)] == [(2, "paid"), (1, "shipped")]


def test_history_trim_cuts_to_history_rows_oldest_first(orders):
    past = iso(utcnow() - timedelta(days=1))
    statements: list[str] = []
    orders.replica.db.set_trace_callback(statements.append)
    assert history_mod.trim(orders.replica, "orders", past, keep_rows=2, batch=3) == 4
    orders.replica.db.set_trace_callback(None)
    assert [(i, v) for i, v, _ in history(orders)] == [(2, "paid"), (1, "shipped")]
    assert len([s for s in statements if s.startswith("DELETE")]) == 2  # 3 + 1: in batches


def test_history_trim_without_a_history_table_does_nothing(orders):
    assert history_mod.trim(orders.replica, "customers", iso(utcnow()), 1000) == 0
