"""Hard-delete reconciliation by checksum bisection, through the real tunnel into real SQLite."""

from __future__ import annotations

import random
import sqlite3
from datetime import timedelta

import pytest
from click.testing import CliRunner
from support.harness import Harness
from support.pgtypes import TYPES_DDL, TYPES_ROWS

from appliance.cli import main
from appliance.clock import iso, utcnow
from appliance.sync import checksum
from appliance.sync.agent import Agent
from appliance.sync.extras import DELETED, HASH
from appliance.sync.link import FixedLink
from appliance.sync.reconcile import THRESHOLD, Reconciler
from appliance.sync.replica import Replica
from appliance.sync.source import Source
from appliance.sync.table import TableSync


def orders(sales, n: int) -> None:
    sales.sql(
        """CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric(10,2),
                 updated_at timestamptz NOT NULL)""",
        db="sales",
    )
    sales.sql(
        "INSERT INTO orders SELECT g, 'new', g * 1.5, '2024-01-01'::timestamptz + g * "
        f"interval '1 second' FROM generate_series(1, {n}) g",
        db="sales",
    )


def source_rows(sales, table="orders", cols="id, status, amount::text", order="id"):
    return [tuple(r) for r in sales.sql(f"SELECT {cols} FROM {table} ORDER BY {order}", db="sales")]


def replica_rows(h, table="orders", cols=("id", "status", "amount"), where=""):
    return [tuple(r[c] for c in cols) for r in h.rows(table, "id", where)]


def test_checksum_python_forms_match_postgres_send_functions():
    assert checksum.ts_send("2024-02-29T18:29:59.999999Z") == "0002b5883737b9ff"
    assert checksum.ts_send("0001-01-01T00:00:00.000000") == "ff1fe2ffc59c6000"
    assert checksum.ts_send("infinity") == "7fffffffffffffff"
    assert checksum.f64("-0") == checksum.f64(0.0) == "0000000000000000"
    assert checksum.f64("NaN") == "7ff8000000000000"
    # quoting keeps the text unambiguous: a comma inside a value is not a separator
    assert checksum.row_text(["a',b", None], ["text", "text"]) == "'a'',b',NULL"
    assert checksum.checksum([5, -5, 2**63]) == checksum.checksum([2**63, -5, 5])


def test_reconcile_removes_hard_deletes_transferring_little(sales, make_config):
    orders(sales, 20000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        gone = [17, 4242, 9999, 15001, 20000]
        sales.sql(f"DELETE FROM orders WHERE id IN ({', '.join(map(str, gone))})", db="sales")
        h.sync()  # cursor sync cannot see a delete
        assert len(h.rows("orders")) == 20000
        result = h.reconcile()
        assert (result.removed, result.refetched) == (5, 0)
        assert replica_rows(h) == source_rows(sales)
        assert DELETED not in h.rows("orders")[0]  # only with hard_delete_action = tombstone
        # the wire carries the differing ranges, not the table
        assert result.keys <= 5 * THRESHOLD and result.transferred < 20000 / 3
        assert (result.source_rows, result.replica_rows) == (19995, 20000)
        again = h.reconcile()
        assert (again.removed, again.refetched, again.keys, again.hashed) == (0, 0, 0, 0)


def test_reconcile_refetches_rows_changed_without_their_cursor(sales, make_config):
    orders(sales, 3000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        # a migration script that forgot updated_at, and a row that slipped past the cursor
        sales.sql(
            "UPDATE orders SET status = 'migrated', amount = 0 WHERE id IN (5, 1000);"
            "INSERT INTO orders VALUES (3001, 'old', 1, '2000-01-01')",
            db="sales",
        )
        h.sync()
        assert replica_rows(h) != source_rows(sales)
        result = h.reconcile(factor=4, threshold=16, first=4)
        assert (result.removed, result.refetched) == (0, 3)
        assert replica_rows(h) == source_rows(sales)


def test_reconcile_finds_no_difference_in_a_copy_of_every_type(sales, make_config):
    sales.sql(TYPES_DDL + TYPES_ROWS, db="sales")
    rng = random.Random(3)
    floats = [rng.uniform(-1e6, 1e6) for _ in range(300)] + [
        5e-324,
        2.2250738585072014e-308,
        1.7976931348623157e308,
        0.1 + 0.2,
        1 / 3,
        -0.0,
        1e15,
        1e16,
        123456789.125,
    ]
    sales.sql(
        "CREATE TABLE floats (id int PRIMARY KEY, x float8, y real, "
        "updated_at timestamptz NOT NULL DEFAULT now())",
        db="sales",
    )
    conn = sales.connect("sales")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO floats (id, x, y) VALUES (%s, %s, %s)",
            [(i, x, x if x == 0 or 1e-37 < abs(x) < 3e38 else None) for i, x in enumerate(floats)],
        )
    conn.close()
    cfg = make_config(
        [
            {"name": "public.everything", "cursor": "updated_at"},
            {"name": "public.floats", "cursor": "updated_at"},
        ]
    )
    with Harness(cfg) as h:
        h.sync()
        for table in ("public.everything", "public.floats"):
            result = h.reconcile(table)
            assert (result.removed, result.refetched) == (0, 0), table
        # and row by row: PostgreSQL's hash in SQL equals the replica's hash in Python
        source = h.link.source()
        shape = source.describe(["public.everything"])["public.everything"]
        pg = dict(source.execute(f"SELECT id, {checksum.pg_row_hash(shape.columns)} FROM everything"))
        here = {r["id"]: r[HASH] for r in h.rows("everything")}
        assert here == pg and len(pg) == 3


@pytest.mark.parametrize(
    "columns",
    [
        {"k uuid": "md5(g::text)::uuid"},
        {'k text COLLATE "und-x-icu"': "(ARRAY['a','B','é','Z','','ß','😀','a b'])[g % 8 + 1] || g"},
        {"k timestamptz": "'2024-01-01'::timestamptz + g * interval '1 minute 0.000001 second'"},
        {"k numeric(12,3)": "g / 7.0"},
        {"k date": "'2020-01-01'::date + g / 3", "n int": "g % 3"},
    ],
    ids=["uuid", "text-icu", "timestamptz", "numeric", "composite"],
)
def test_reconcile_bisects_keys_of_every_kind(sales, make_config, columns):
    names = [c.split()[0] for c in columns]
    key = ", ".join(names)
    sales.sql(
        f"CREATE TABLE keyed ({', '.join(columns)}, v int, updated_at timestamptz "
        f"NOT NULL DEFAULT now(), PRIMARY KEY ({key}))",
        db="sales",
    )
    exprs = ", ".join(f"{e} AS {n}" for n, e in zip(names, columns.values(), strict=True))
    sales.sql(
        f"INSERT INTO keyed SELECT DISTINCT ON ({key}) * FROM (SELECT {exprs}, g AS v "
        f"FROM generate_series(1, 1500) g) s",
        db="sales",
    )
    cfg = make_config([{"name": "public.keyed", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        first = h.reconcile(factor=4, threshold=10, first=4)
        assert (first.removed, first.refetched) == (0, 0)  # both sides put keys in the same range
        sales.sql(
            "DELETE FROM keyed WHERE v IN (3, 700, 1499); UPDATE keyed SET v = -v WHERE v IN (10, 1000)",
            db="sales",
        )
        result = h.reconcile(factor=4, threshold=10, first=4)
        assert (result.removed, result.refetched) == (3, 2)
        assert sorted(r["v"] for r in h.rows("keyed")) == sorted(
            r[0] for r in sales.sql("SELECT v FROM keyed", db="sales")
        )
        assert result.keys < 200  # the differing ranges only
        assert result.queries >= 4  # bounds or a first cut, then levels of 4-way cuts


def test_reconcile_mass_delete_splits_on_the_replica_side(sales, make_config):
    sales.sql(
        "CREATE TABLE keyed (k text PRIMARY KEY, updated_at timestamptz NOT NULL "
        "DEFAULT now()); INSERT INTO keyed SELECT md5(g::text) FROM "
        "generate_series(1, 3000) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.keyed", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql("DELETE FROM keyed WHERE k > '4'", db="sales")
        left = sales.sql("SELECT count(*) FROM keyed", db="sales")[0][0]
        result = h.reconcile(factor=8, threshold=20, first=8)
        assert result.removed == 3000 - left and result.refetched == 0
        assert len(h.rows("keyed")) == left


def test_reconcile_tombstones_rows_when_configured(sales, make_config):
    orders(sales, 200)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at", "hard_delete_action": "tombstone"}])
    with Harness(cfg) as h:
        h.sync()
        sales.sql("DELETE FROM orders WHERE id IN (10, 20)", db="sales")
        before = iso(utcnow())
        assert h.reconcile().removed == 2
        marked = {r["id"]: r[DELETED] for r in h.rows("orders") if r[DELETED]}
        assert sorted(marked) == [10, 20] and all(before <= v <= iso(utcnow()) for v in marked.values())
        assert len(h.rows("orders")) == 200  # kept, marked
        assert h.reconcile().removed == 0  # the comparison ignores tombstoned rows
        sales.sql("INSERT INTO orders VALUES (10, 'back', 1, now())", db="sales")
        h.sync()
        row = h.rows("orders", where="id = 10")[0]
        assert (row["status"], row[DELETED]) == ("back", None)  # alive again


def test_reconcile_hashes_only_rows_changed_since_last_time(sales, make_config):
    orders(sales, 1000)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], sync={"lookback": "0s"})
    with Harness(cfg) as h:
        h.sync()
        assert h.reconcile().hashed == 1000
        sales.sql("UPDATE orders SET status = 'paid', updated_at = now() WHERE id <= 3", db="sales")
        h.sync()
        # the upserts cleared the cached hashes of the rows read: the 3 changed ones and
        # the one at the cursor (read again by >=); the lookback window would add its rows
        assert h.reconcile().hashed == 4


def test_reconcile_keeps_masked_columns_masked(sales, make_config):
    sales.sql(
        "CREATE TABLE people (id int PRIMARY KEY, email text, city text, "
        "updated_at timestamptz NOT NULL DEFAULT now()); INSERT INTO people "
        "SELECT g, 'p' || g || '@example.com', 'Bern' FROM generate_series(1, 50) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.people", "cursor": "updated_at", "mask_columns": ["email"]}])
    with Harness(cfg) as h:
        h.sync()
        assert h.reconcile().refetched == 0  # masked values are not compared
        sales.sql("UPDATE people SET city = 'Genf' WHERE id = 7; DELETE FROM people WHERE id = 8", db="sales")
        result = h.reconcile()
        assert (result.removed, result.refetched) == (1, 1)
        row = h.rows("people", where="id = 7")[0]
        assert row["city"] == "Genf" and "@" not in row["email"] and len(row["email"]) == 64


def test_sync_once_reconcile_runs_it_and_the_schedule_waits(sales, make_config):
    orders(sales, 100)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], sync={"reconcile_every": "1h"})

    def sync(*args):
        result = CliRunner().invoke(main, ["--config", str(cfg), "sync", "--once", *args])
        assert result.exit_code == 0, result.output

    sync()  # the first pass reconciles: never done before
    sales.sql("DELETE FROM orders WHERE id = 50", db="sales")
    sync()  # not due for an hour
    with Harness(cfg) as h:
        assert 50 in [r["id"] for r in h.rows("orders")]
    sync("--reconcile")
    with Harness(cfg) as h:
        assert 50 not in [r["id"] for r in h.rows("orders")]
        record = h.store.get("reconciled:public.orders")
        assert record["removed"] == 1 and record["error"] is None
        assert any(
            "1 gone at the source removed" in e["message"]
            for e in h.store.events()
            if e["kind"] == "reconcile"
        )


def test_agent_reconciles_when_reconcile_every_has_passed(sales, make_config):
    orders(sales, 100)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}], sync={"reconcile_every": "10m"})
    with Harness(cfg) as h:
        assert h.agent_pass().ok
        sales.sql("DELETE FROM orders WHERE id = 7", db="sales")
        assert h.agent_pass().ok
        assert len(h.rows("orders")) == 100
        record = h.store.get("reconciled:public.orders")
        record["at"] = iso(utcnow() - timedelta(minutes=11))
        h.store.put("reconciled:public.orders", record)
        assert h.agent_pass().ok
        assert len(h.rows("orders")) == 99


def test_reconcile_a_sqlite_source_compares_every_row(tmp_path):
    src = tmp_path / "source.sqlite"
    db = sqlite3.connect(src)
    db.executescript(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT, x REAL, "
        "updated_at TIMESTAMPTZ NOT NULL);"
        "INSERT INTO t VALUES (1, 'a', 0.5, '2024-01-01T00:00:00.000000Z'),"
        "(2, 'b', NULL, '2024-01-01T00:00:01.000000Z'), "
        "(3, 'c', 1e300, '2024-01-01T00:00:02.000000Z');"
    )
    db.commit()
    from appliance.config import parse
    from appliance.sync.table import make_plan

    cfg = parse(
        {
            "appliance": {"state_dir": str(tmp_path)},
            "source": {"host": "x", "database": "d", "user": "u"},
            "tables": [{"name": "main.t", "cursor": "updated_at", "replica_name": "t"}],
        }
    )
    source = Source(f"sqlite:///{src}")
    with Replica(cfg.replica_url) as replica:
        plan = make_plan(cfg.tables[0], source.describe(["main.t"])["main.t"], False)
        TableSync(FixedLink(source).source(), replica, plan, cfg.sync).run()
        db.execute("DELETE FROM t WHERE id = 2")
        db.execute("UPDATE t SET v = 'z' WHERE id = 3")
        db.commit()
        result = Reconciler(TableSync(source, replica, plan, cfg.sync)).run()
        assert (result.removed, result.refetched) == (1, 1)
        assert replica.db.execute("SELECT id, v FROM t ORDER BY id").fetchall() == [(1, "a"), (3, "z")]
    source.close()
    db.close()


def test_agent_stopping_interrupts_a_reconciliation_without_failing(sales, make_config):
    orders(sales, 100)
    cfg = make_config([{"name": "public.orders", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        agent = Agent(h.config, h.link, h.replica, h.store)
        agent.stopping.set()  # SIGTERM arrived: the reconciliation stops at its next tick
        result, _ = agent._pass(reconcile=True)
        assert result.ok and result.error is None
        assert h.store.get("reconciled:public.orders") is None  # due again next time
