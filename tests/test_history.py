"""History of configured columns: one row per version seen, written with the rows."""

from __future__ import annotations

import pytest
from support.harness import Harness

from appliance.errors import ReplicaError


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
