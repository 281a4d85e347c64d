"""Schemas from real life and cursor edge cases, through the real tunnel into real SQLite."""

from __future__ import annotations

import json

from click.testing import CliRunner
from support.harness import Harness

from appliance.cli import main

REAL_LIFE = """
CREATE TYPE "Order State" AS ENUM ('new', 'paid', 'shipped');
CREATE DOMAIN money_eur AS numeric(40, 20) CHECK (VALUE >= 0);
CREATE TABLE shop."Orders" (
    "Order ID" bigint, "Line" int,
    "State" "Order State" NOT NULL, "Price" money_eur, qty int NOT NULL,
    "Total" numeric(60, 20) GENERATED ALWAYS AS ("Price" * qty) STORED,
    tags text[], matrix int[][], scan bytea, search tsvector, "customerID" uuid,
    "Updated At" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY ("Order ID", "Line"));
INSERT INTO shop."Orders" ("Order ID", "Line", "State", "Price", qty, tags, matrix, scan, search,
                           "customerID")
SELECT g / 3, g % 3, (ARRAY['new','paid','shipped']::"Order State"[])[g % 3 + 1],
       12345678901234567890.12345678901234567891 + g, g % 5 + 1,
       ARRAY['a,b', 'c"d', NULL], ARRAY[[g, 2], [3, 4]], decode(md5(g::text), 'hex'),
       to_tsvector('english', 'order number ' || g), md5(g::text)::uuid
FROM generate_series(1, 300) g;
"""
CHECK = {  # column -> SQL true when the replica's value (%s) equals the source's
    "State": '"State"::text = %s',
    "Price": '"Price" = (%s)::numeric',
    "qty": "qty = %s",
    "Total": '"Total" = (%s)::numeric',
    "tags": "array_to_json(tags)::jsonb = (%s)::jsonb",
    "matrix": "array_to_json(matrix)::jsonb = (%s)::jsonb",
    "scan": "scan = %s",
    "search": "search::text = %s",
    "customerID": '"customerID" = (%s)::uuid',
}


def test_real_life_columns_sync_exactly_and_reconcile_clean(sales, make_config):
    sales.sql("CREATE SCHEMA shop;" + REAL_LIFE, db="sales")
    cfg = make_config(
        [{"name": "shop.Orders", "cursor": "Updated At", "replica_name": "orders", "history": ["State"]}]
    )
    with Harness(cfg) as h:
        h.sync()
        rows = h.rows("orders", '"Order ID", "Line"')
        assert len(rows) == 300
        assert rows[0]["Price"] == "12345678901234567891.12345678901234567891"  # 40 digits, exact
        conn = sales.connect("sales")
        with conn.cursor() as cur:
            for row in rows[::37]:
                for col, check in CHECK.items():
                    value = memoryview(row[col]) if isinstance(row[col], bytes) else row[col]
                    cur.execute(
                        f'SELECT {check} FROM shop."Orders" WHERE "Order ID" = %s AND "Line" = %s',
                        (value, row["Order ID"], row["Line"]),
                    )
                    assert cur.fetchone()[0] is True, (col, row[col])
        conn.close()
        assert h.reconcile().refetched == 0  # every type hashes alike on both sides
        sales.sql(
            'UPDATE shop."Orders" SET "State" = \'shipped\', qty = 9, "Updated At" = now() '
            'WHERE "Order ID" = 7; DELETE FROM shop."Orders" WHERE "Order ID" = 8',
            db="sales",
        )
        h.sync()
        assert {r["Total"] for r in h.rows("orders", "1", '"Order ID" = 7')} == {
            r[0]
            for r in sales.sql('SELECT "Total"::text FROM shop."Orders" WHERE "Order ID" = 7', db="sales")
        }  # the generated column follows
        result = h.reconcile(factor=4, threshold=8, first=4)
        assert (result.removed, result.refetched) == (3, 0)
        assert len(h.rows("orders")) == 297


def test_partitioned_table_syncs_through_its_parent(sales, make_config):
    sales.sql(
        """CREATE TABLE events (id bigint, at date, kind text,
                     updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (id, at))
                 PARTITION BY RANGE (at);
                 CREATE TABLE events_2023 PARTITION OF events
                     FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
                 CREATE TABLE events_2024 PARTITION OF events
                     FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
                 INSERT INTO events SELECT g, '2023-06-01'::date + g, 'seen'
                     FROM generate_series(1, 400) g""",
        db="sales",
    )
    cfg = make_config([{"name": "public.events", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        assert len(h.rows("events")) == 400  # both partitions, through the parent
        sales.sql(
            "INSERT INTO events VALUES (1000, '2024-12-31', 'late');DELETE FROM events WHERE id IN (5, 300)",
            db="sales",
        )
        h.sync()
        assert h.reconcile().removed == 2
        assert sorted(r["id"] for r in h.rows("events")) == sorted(
            r[0] for r in sales.sql("SELECT id FROM events", db="sales")
        )


def test_table_without_primary_key_is_refreshed_whole_with_a_note(sales, make_config):
    sales.sql(
        "CREATE TABLE audit (at timestamptz, who text, doc jsonb, tags text[]);"
        "INSERT INTO audit VALUES ('2024-01-01', 'ann', '{\"a\": 1}', '{x}'),"
        "('2024-01-01', 'ann', '{\"a\": 1}', '{x}'), ('2024-01-02', NULL, NULL, NULL)",
        db="sales",
    )
    cfg = make_config([{"name": "public.audit"}])
    run = CliRunner().invoke(main, ["--config", str(cfg), "sync", "--once", "--reconcile"])
    assert run.exit_code == 0, run.output
    status = json.loads(CliRunner().invoke(main, ["--config", str(cfg), "status", "--json"]).output)
    assert status["tables"][0]["note"] == "no primary key: refreshed whole each pass"
    with Harness(cfg) as h:
        assert len(h.rows("audit")) == 3  # duplicates kept: without a key they are real rows
        sales.sql("DELETE FROM audit WHERE who IS NULL", db="sales")
        h.sync()
        assert len(h.rows("audit")) == 2


def test_cursor_ties_across_batches_with_a_composite_key(sales, make_config):
    sales.sql(
        "CREATE TABLE lines (a int, b text, v int, updated_at timestamptz NOT NULL, "
        "PRIMARY KEY (a, b)); INSERT INTO lines SELECT g % 4, 'k' || g, g, "
        "'2024-05-01 12:00:00.123456+00' FROM generate_series(1, 23) g",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.lines", "cursor": "updated_at"}], sync={"batch_size": 3, "lookback": "0s"}
    )
    with Harness(cfg) as h:
        h.sync()
        # a late row with the same cursor value and a key *before* the last one read
        sales.sql("INSERT INTO lines VALUES (0, 'a-late', 100, '2024-05-01 12:00:00.123456+00')", db="sales")
        h.sync()
        assert sorted(r["v"] for r in h.rows("lines")) == [*range(1, 24), 100]


def test_cursor_microseconds_are_never_rounded(sales, make_config):
    sales.sql(
        "CREATE TABLE ticks (id int PRIMARY KEY, updated_at timestamptz NOT NULL);"
        "INSERT INTO ticks VALUES (1, '2024-05-01 12:00:00.999999+00')",
        db="sales",
    )
    cfg = make_config([{"name": "public.ticks", "cursor": "updated_at"}], sync={"lookback": "0s"})
    with Harness(cfg) as h:
        h.sync()
        sales.sql(
            "INSERT INTO ticks VALUES (2, '2024-05-01 12:00:01.000000+00'),"
            "(3, '2024-05-01 12:00:00.999999+00'), (0, '2024-05-01 12:00:00.999998+00')",
            db="sales",
        )
        h.sync()
        got = {r["id"]: r["updated_at"] for r in h.rows("ticks")}
        assert got == {
            1: "2024-05-01T12:00:00.999999Z",
            2: "2024-05-01T12:00:01.000000Z",
            3: "2024-05-01T12:00:00.999999Z",
        }  # id 0 is older than the cursor:
        assert h.reconcile().refetched == 1  # only reconciliation (or lookback) can see it


def test_naive_timestamp_cursor_from_a_non_utc_database(sales, make_config):
    sales.sql("ALTER DATABASE sales SET timezone = 'America/St_Johns'")  # UTC-3:30 / -2:30
    try:
        sales.sql(
            "CREATE TABLE visits (id int PRIMARY KEY, seen_at timestamptz, "
            "updated_at timestamp NOT NULL DEFAULT localtimestamp);"
            "INSERT INTO visits VALUES (1, '2024-03-10 12:00:00-02:30')",
            db="sales",
        )
        cfg = make_config([{"name": "public.visits", "cursor": "updated_at"}], sync={"lookback": "0s"})
        with Harness(cfg) as h:
            h.sync()
            sales.sql("INSERT INTO visits (id) VALUES (2), (3)", db="sales")
            h.sync()
            source = {
                i: t
                for i, t in sales.sql(
                    "SELECT id, to_char(updated_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.US') FROM visits", db="sales"
                )
            }
            rows = {r["id"]: r for r in h.rows("visits")}
            assert {i: r["updated_at"] for i, r in rows.items()} == source  # as written, no shift
            assert rows[1]["seen_at"] == "2024-03-10T14:30:00.000000Z"  # zoned: UTC
    finally:
        sales.sql("ALTER DATABASE sales RESET timezone")


def test_null_cursor_rows_are_read_every_pass(sales, make_config):
    sales.sql(
        "CREATE TABLE notes (id int PRIMARY KEY, body text, updated_at timestamptz);"
        "INSERT INTO notes VALUES (1, 'a', '2024-01-01'), (2, 'b', NULL)",
        db="sales",
    )
    cfg = make_config([{"name": "public.notes", "cursor": "updated_at"}], sync={"lookback": "0s"})
    with Harness(cfg) as h:
        h.sync()
        sales.sql(
            "INSERT INTO notes VALUES (3, 'c', NULL); UPDATE notes SET body = 'b2' WHERE id = 2", db="sales"
        )
        h.sync()
        assert {r["id"]: r["body"] for r in h.rows("notes")} == {1: "a", 2: "b2", 3: "c"}
        sales.sql("DELETE FROM notes WHERE id = 3", db="sales")
        assert h.reconcile().removed == 1


def test_numeric_cursor_and_key_page_in_numeric_order(sales, make_config):
    sales.sql(
        "CREATE TABLE versions (k numeric(30, 3) PRIMARY KEY, version numeric(30) NOT NULL);"
        "INSERT INTO versions SELECT g / 7.0, g FROM generate_series(1, 120) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.versions", "cursor": "version"}], sync={"batch_size": 25})
    with Harness(cfg) as h:
        h.sync()
        sales.sql("INSERT INTO versions VALUES (1000, 1000), (0.5, 121)", db="sales")
        h.sync()  # "9" > "121" as text: a text-ordered cursor would never read these
        assert len(h.rows("versions")) == 122


def test_bytea_primary_key_pages_resumes_and_reconciles(sales, make_config):
    # Keys arrive as bytes: they page through the source and persist in the sync state.
    sales.sql(
        "CREATE TABLE blobs (k bytea PRIMARY KEY, v int, at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO blobs (k, v) SELECT decode(md5(g::text), 'hex'), g "
        "FROM generate_series(1, 50) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.blobs", "cursor": "at"}], sync={"batch_size": 7})
    with Harness(cfg) as h:
        h.sync()
        got = {bytes(r["k"]): r["v"] for r in h.rows("blobs", "k")}
        assert got == {
            bytes.fromhex(k): v for k, v in sales.sql("SELECT encode(k, 'hex'), v FROM blobs", db="sales")
        }
        state = h.replica.state("blobs")
        assert isinstance(state.cursor_key[0], bytes)  # stored and read back as bytes
        sales.sql(
            "UPDATE blobs SET v = -v, at = now() WHERE v % 10 = 0; DELETE FROM blobs WHERE v = 3", db="sales"
        )
        h.sync()
        assert h.reconcile().removed == 1
        assert sorted(r["v"] for r in h.rows("blobs", "k")) == sorted(
            v for (v,) in sales.sql("SELECT v FROM blobs", db="sales")
        )
