"""Sync through the real tunnel into real SQLite: types, increments, ties, late commits, resume."""

from __future__ import annotations

import sqlite3
import threading

import pytest
from click.testing import CliRunner
from support.harness import Harness
from support.pgtypes import TYPES_DDL, TYPES_ROWS

from appliance.cli import main
from appliance.sync.agent import run_once

# column -> SQL that is true when the replica value (%s) is exactly the source value
ROUND_TRIP = {
    "small": "small IS NOT DISTINCT FROM (%s)::smallint",
    "normal": "normal IS NOT DISTINCT FROM (%s)::integer",
    "dom": "dom IS NOT DISTINCT FROM (%s)::integer",
    "price": "price IS NOT DISTINCT FROM (%s)::numeric",
    "ratio": "ratio IS NOT DISTINCT FROM (%s)::double precision",
    "label": "label IS NOT DISTINCT FROM %s",
    "code": "code IS NOT DISTINCT FROM %s",
    "fixed": "fixed::text IS NOT DISTINCT FROM rtrim(%s)",
    "flag": "flag IS NOT DISTINCT FROM ((%s)::int)::boolean",
    "at": "at IS NOT DISTINCT FROM (%s)::timestamptz",
    "naive": "naive IS NOT DISTINCT FROM (%s)::timestamp",
    "day": "day IS NOT DISTINCT FROM (%s)::date",
    "clock": "clock IS NOT DISTINCT FROM (%s)::time",
    "span": "span IS NOT DISTINCT FROM (%s)::interval",
    "ident": "ident IS NOT DISTINCT FROM (%s)::uuid",
    "doc": "doc IS NOT DISTINCT FROM (%s)::jsonb",
    "raw_json": "raw_json::text IS NOT DISTINCT FROM %s",
    "tags": "array_to_json(tags)::jsonb IS NOT DISTINCT FROM (%s)::jsonb",
    "matrix": "array_to_json(matrix)::jsonb IS NOT DISTINCT FROM (%s)::jsonb",
    "feeling": "feeling::text IS NOT DISTINCT FROM %s",
    "payload": "payload IS NOT DISTINCT FROM %s",
    "search": "search::text IS NOT DISTINCT FROM %s",
}


def run(config, *args):
    result = CliRunner().invoke(main, ["--config", str(config), *args])
    return result


def replica_rows(config_path, table, order="id"):
    import tomllib

    state = tomllib.loads(config_path.read_text())["appliance"]["state_dir"]
    db = sqlite3.connect(f"{state}/replica.sqlite")
    try:
        cur = db.execute(f'SELECT * FROM "{table}" ORDER BY {order}')
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, r, strict=True)) for r in cur]
    finally:
        db.close()


def test_sync_initial_copy_is_lossless_for_every_type(sales, make_config):
    sales.sql(TYPES_DDL + TYPES_ROWS, db="sales")
    cfg = make_config([{"name": "public.everything", "cursor": "updated_at"}])
    result = run(cfg, "sync", "--once")
    assert result.exit_code == 0, result.output
    rows = replica_rows(cfg, "everything")
    assert [r["id"] for r in rows] == [1, 2, 3]
    conn = sales.connect("sales")
    cur = conn.cursor()
    for row in rows:
        for col, check in ROUND_TRIP.items():
            value = row[col]
            if isinstance(value, str) and col == "payload":
                pytest.fail("bytea must be stored as a BLOB")
            cur.execute(
                f"SELECT {check} FROM everything WHERE id = %s",
                (value if not isinstance(value, bytes) else memoryview(value), row["id"]),
            )
            assert cur.fetchone()[0] is True, f"row {row['id']} column {col}: {value!r}"
    conn.close()
    one, two = rows[0], rows[1]
    assert one["at"] == "2024-02-29T18:29:59.999999Z"  # UTC, microseconds, Z
    assert one["naive"] == "2024-01-01T00:00:00.000001"
    assert one["price"] == "12345678901234567890.0123456789"  # exact text, not a float
    assert two["price"] == "1.5000000000"  # the column's scale, kept
    assert one["flag"] == 1 and two["flag"] == 0
    assert one["payload"] == b"\x00\xff\x10" and two["payload"] == b""
    assert two["at"] == "infinity"
    assert two["label"] == "tab\there\nnewline \\ back"
    assert isinstance(one["small"], int) and isinstance(one["ratio"], float)


def _orders(sales, n=0):
    sales.sql(
        """CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2),
                 deleted_at timestamptz, updated_at timestamptz NOT NULL)""",
        db="sales",
    )
    if n:
        sales.sql(
            "INSERT INTO orders SELECT g, 'new', g * 1.5, NULL, "
            "'2024-01-01'::timestamptz + g * interval '1 second' "
            f"FROM generate_series(1, {n}) g",
            db="sales",
        )


def source_orders(sales):
    return [list(r) for r in sales.sql("SELECT id, status, amount::text FROM orders ORDER BY id", db="sales")]


def replica_orders(cfg):
    return [[r["id"], r["status"], r["amount"]] for r in replica_rows(cfg, "orders")]


def test_sync_inserts_updates_and_soft_deletes_propagate(sales, make_config):
    _orders(sales, 50)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at", "soft_delete": "deleted_at"}])
    assert run(cfg, "sync", "--once").exit_code == 0
    sales.sql(
        """INSERT INTO orders VALUES (51, 'new', 1, NULL, now());
                 UPDATE orders SET status = 'paid', updated_at = now() WHERE id <= 10;
                 UPDATE orders SET deleted_at = now(), updated_at = now() WHERE id = 20""",
        db="sales",
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    assert replica_orders(cfg) == source_orders(sales)
    soft = [r for r in replica_rows(cfg, "orders") if r["id"] == 20][0]
    assert soft["deleted_at"] is not None  # soft_delete_action = keep mirrors the source


def test_sync_soft_delete_drop_and_filter_remove_rows(sales, make_config):
    _orders(sales, 20)
    cfg = make_config(
        [
            {
                "name": "public.orders",
                "cursor": "updated_at",
                "soft_delete": "deleted_at",
                "soft_delete_action": "drop",
                "where": "status <> 'test'",
            }
        ]
    )
    sales.sql("UPDATE orders SET status = 'test' WHERE id = 1", db="sales")
    assert run(cfg, "sync", "--once").exit_code == 0
    assert 1 not in [r["id"] for r in replica_rows(cfg, "orders")]
    sales.sql(
        """UPDATE orders SET deleted_at = now(), updated_at = now() WHERE id = 2;
                 UPDATE orders SET status = 'test', updated_at = now() WHERE id = 3""",
        db="sales",
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    ids = [r["id"] for r in replica_rows(cfg, "orders")]
    assert ids == list(range(4, 21))


def test_sync_ties_at_the_cursor_boundary_are_not_lost(sales, make_config):
    _orders(sales)
    # 25 rows share one cursor value; pages of 7 split them across batches.
    sales.sql(
        "INSERT INTO orders SELECT g, 'tie', 1, NULL, '2024-05-01 12:00:00.123456+00' "
        "FROM generate_series(1, 25) g",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.orders", "cursor": "updated_at"}], sync={"batch_size": 7, "lookback": "0s"}
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    sales.sql(
        "INSERT INTO orders SELECT g, 'tie2', 1, NULL, '2024-05-01 12:00:00.123456+00' "
        "FROM generate_series(26, 40) g",
        db="sales",
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    assert replica_orders(cfg) == source_orders(sales)


def test_sync_late_commit_inside_lookback_is_seen(sales, make_config):
    _orders(sales, 5)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], sync={"lookback": "10m"})
    late = sales.connect("sales")
    late.autocommit = False
    cur = late.cursor()
    # The transaction stamps now() at its start, then stays open across a sync.
    cur.execute("INSERT INTO orders VALUES (100, 'late', 1, NULL, now())")
    sales.sql("INSERT INTO orders VALUES (6, 'early', 1, NULL, now() + interval '1 second')", db="sales")
    assert run(cfg, "sync", "--once").exit_code == 0
    assert 100 not in [r["id"] for r in replica_rows(cfg, "orders")]
    late.commit()
    late.close()
    assert run(cfg, "sync", "--once").exit_code == 0
    assert replica_orders(cfg) == source_orders(sales)


class Interrupted(BaseException):
    """Raised from the pass's own per-page tick: the copy dies between two pages, as the
    process would on a signal (a BaseException: a table's ordinary errors are caught)."""


def test_sync_interrupted_initial_copy_resumes_from_its_cursor(sales, make_config):
    _orders(sales, 3000)
    cfg = make_config(
        [{"name": "public.orders", "cursor": "updated_at"}], sync={"batch_size": 500, "lookback": "0s"}
    )
    ticks = []

    def die_after_two_pages() -> None:  # the tick runs once a page is handed to the writer
        ticks.append(len(ticks) + 1)
        if len(ticks) == 2:
            raise Interrupted

    with Harness(cfg) as h, pytest.raises(Interrupted):
        run_once(h.config, h.link, h.replica, h.store, tick=die_after_two_pages)
    with Harness(cfg) as h:  # a new process: fresh connections, the same files
        # the copy died mid-table: two pages and their cursor committed together, no more
        before = h.replica.state("orders")
        assert (before.phase, before.initial_key) == ("initial", [1000])
        assert [r["id"] for r in h.rows("orders", "id")] == list(range(1, 1001))
        result = run_once(h.config, h.link, h.replica, h.store)
        after = h.replica.state("orders")
    assert result.ok, result.summary()
    # it went on from the cursor: the rows after key 1000 (and the one row at the high-water
    # mark that the first incremental page re-reads), not all 3000 again
    assert 2000 <= result.tables[0].read < 3000
    assert after.phase == "incremental"
    assert replica_orders(cfg) == source_orders(sales)  # nothing lost, nothing twice


def test_sync_table_without_cursor_is_refreshed_whole(sales, make_config):
    sales.sql(
        "CREATE TABLE statuses (code text PRIMARY KEY, label text);"
        "INSERT INTO statuses VALUES ('n', 'new'), ('p', 'paid')",
        db="sales",
    )
    cfg = make_config([{"name": "public.statuses"}])
    assert run(cfg, "sync", "--once").exit_code == 0
    sales.sql("DELETE FROM statuses WHERE code = 'n'; INSERT INTO statuses VALUES ('x', 'lost')", db="sales")
    assert run(cfg, "sync", "--once").exit_code == 0
    assert [(r["code"], r["label"]) for r in replica_rows(cfg, "statuses", "code")] == [
        ("p", "paid"),
        ("x", "lost"),
    ]


def test_sync_schema_and_names_with_spaces(sales, make_config):
    sales.sql(
        'CREATE SCHEMA shop; CREATE TABLE shop."Line Items" ("Item ID" int PRIMARY KEY, '
        '"Mixed Case" text, updated_at timestamptz NOT NULL DEFAULT now());'
        "INSERT INTO shop.\"Line Items\" VALUES (1, 'a'), (2, 'b')",
        db="sales",
    )
    cfg = make_config([{"name": "shop.Line Items", "cursor": "updated_at"}])
    assert run(cfg, "sync", "--once").exit_code == 0, run(cfg, "status").output
    rows = replica_rows(cfg, "shop__Line Items", '"Item ID"')
    assert [(r["Item ID"], r["Mixed Case"]) for r in rows] == [(1, "a"), (2, "b")]


def test_sync_concurrent_writer_then_final_pass_equals_source(sales, make_config):
    _orders(sales, 200)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], sync={"batch_size": 50})
    stop = threading.Event()

    def writer():
        conn = sales.connect("sales")
        i = 1000
        while not stop.is_set():
            with conn.cursor() as cur:
                cur.execute("INSERT INTO orders VALUES (%s, 'w', 1, NULL, now())", (i,))
                cur.execute(
                    "UPDATE orders SET status = 'u', updated_at = now() WHERE id = %s", (i % 200 + 1,)
                )
            i += 1
        conn.close()

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(3):
            assert run(cfg, "sync", "--once").exit_code == 0
    finally:
        stop.set()
        t.join()
    assert run(cfg, "sync", "--once").exit_code == 0
    assert replica_orders(cfg) == source_orders(sales)


def test_sync_masked_and_excluded_columns_never_reach_the_replica(sales, make_config):
    sales.sql(
        """CREATE TABLE customers (id int PRIMARY KEY, email text, phone text,
                   updated_at timestamptz NOT NULL DEFAULT now());
                 CREATE TABLE orders (id int PRIMARY KEY, email text,
                   updated_at timestamptz NOT NULL DEFAULT now());
                 INSERT INTO customers VALUES (1, 'ada@example.com', '+44 555 0101'), (2, NULL, NULL);
                 INSERT INTO orders VALUES (10, 'ada@example.com')""",
        db="sales",
    )
    cfg = make_config(
        [
            {
                "name": "public.customers",
                "cursor": "updated_at",
                "mask_columns": ["email"],
                "exclude_columns": ["phone"],
            },
            {"name": "public.orders", "cursor": "updated_at", "mask_columns": ["email"]},
        ]
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    customers = replica_rows(cfg, "customers")
    orders = replica_rows(cfg, "orders")
    assert "phone" not in customers[0]
    masked = customers[0]["email"]
    assert len(masked) == 64 and masked != "ada@example.com"
    assert orders[0]["email"] == masked  # the same key: joins still work
    assert customers[1]["email"] is None
    import tomllib

    state = tomllib.loads(cfg.read_text())["appliance"]["state_dir"]
    from pathlib import Path

    raw = Path(f"{state}/replica.sqlite").read_bytes()
    assert b"ada@example.com" not in raw and b"555 0101" not in raw
    import os

    assert oct(os.stat(f"{state}/mask.key").st_mode & 0o777) == "0o600"


def test_sync_masking_the_key_is_refused_clearly(sales, make_config):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())", db="sales"
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at", "mask_columns": ["id"]}])
    result = run(cfg, "sync", "--once")
    assert result.exit_code == 1
    status = run(cfg, "status").output
    assert "mask_columns cannot hold the key" in status


def test_sync_row_count_stays_exact_without_recounting(sales, make_config):
    _orders(sales, 30)
    cfg = make_config(
        [
            {
                "name": "public.orders",
                "cursor": "updated_at",
                "soft_delete": "deleted_at",
                "soft_delete_action": "drop",
            }
        ],
        sync={"batch_size": 7},
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    sales.sql(
        """INSERT INTO orders SELECT g, 'new', 1, NULL, now() FROM generate_series(31, 40) g;
                 UPDATE orders SET status = 'paid', updated_at = now() WHERE id <= 5;
                 UPDATE orders SET deleted_at = now(), updated_at = now() WHERE id IN (6, 7)""",
        db="sales",
    )
    assert run(cfg, "sync", "--once").exit_code == 0
    import json

    doc = json.loads(run(cfg, "status", "--json").output)
    assert doc["tables"][0]["rows"] == 38 == len(replica_rows(cfg, "orders"))


def test_sync_bulk_copy_pauses_the_cycle_collector_and_restores_it():
    import gc

    from appliance.sync.table import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError), gc_paused():
        assert not gc.isenabled()
        raise RuntimeError("a failed page")
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


def test_sync_each_statement_is_read_only_even_if_the_session_default_is_turned_off(sales):
    # Statements run in autocommit (one round trip each, issue 15). The session's default
    # read-only can be switched off by a statement; each statement's own SET TRANSACTION
    # READ ONLY still holds. A superuser login, so that only the session can refuse.
    from appliance.errors import SourceError
    from appliance.sync.source import Source

    sales.sql("CREATE TABLE t (id int)", db="sales")
    with Source(sales.url(db="sales")) as src:
        src.execute("SET default_transaction_read_only = off")
        assert src.execute("SHOW default_transaction_read_only") == [("off",)]
        with pytest.raises(SourceError) as e:
            src.execute("INSERT INTO t VALUES (1)")
        assert "read-only transaction" in str(e.value)
    assert sales.sql("SELECT count(*) FROM t", db="sales") == [(0,)]
