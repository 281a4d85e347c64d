"""A table without a key: read through a server-side cursor, one batch in memory at a time.

There is no keyset to page by (rows repeat and hold NULLs), so the refresh reads one
statement a batch at a time (Source.stream). Before, 1M keyless rows took 393 MB in one
fetch (issue 14, finding 9).
"""

from __future__ import annotations

import tracemalloc
from collections import Counter

from support.harness import Harness

from appliance.sync.agent import run_once
from appliance.sync.source import Source

ROWS = 30_000
BATCH = 1_000
TABLE = (
    "CREATE TABLE audit (at timestamptz, who text, doc jsonb, blob bytea);"
    f"INSERT INTO audit SELECT '2024-01-01'::timestamptz + (g % 500) * interval '1 s', "
    "CASE WHEN g % 7 = 0 THEN NULL ELSE 'user' || (g % 300) END, "
    "jsonb_build_object('g', g % 50), CASE WHEN g % 3 = 0 THEN NULL ELSE '\\x00ff'::bytea END "
    f"FROM generate_series(1, {ROWS}) g"
)


def _source_multiset(sales) -> Counter:
    rows = sales.sql(
        "SELECT to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS'), who, doc::text, "
        "encode(blob, 'hex') FROM audit",
        db="sales",
    )
    return Counter(rows)


def _replica_multiset(h) -> Counter:
    return Counter(
        (r["at"][:19], r["who"], r["doc"], r["blob"].hex() if r["blob"] is not None else None)
        for r in h.rows("audit")
    )


def test_keyless_table_is_read_in_batches_and_equals_the_source(sales, make_config):
    sales.sql(TABLE, db="sales")
    cfg = make_config([{"name": "public.audit"}], sync={"batch_size": BATCH})
    with Harness(cfg) as h:
        result = h.sync()
        assert _replica_multiset(h) == _source_multiset(sales)  # duplicates and NULLs kept
        # One FETCH per batch (plus the cursor and the end): bounded pages, not one read.
        assert result.statements >= ROWS // BATCH + 2, result.summary()
        sales.sql("DELETE FROM audit WHERE who IS NULL", db="sales")
        h.sync()
        assert _replica_multiset(h) == _source_multiset(sales)


def test_keyless_refresh_holds_one_batch_in_memory_not_the_table(sales, make_config):
    sales.sql(TABLE, db="sales")
    cfg = make_config([{"name": "public.audit"}], tunnel=False, sync={"batch_size": BATCH})
    with Harness(cfg) as h:
        # The anchor, in this process: the same rows fetched whole as one read would.
        with Source(sales.url(db="sales")) as src:
            tracemalloc.start()
            whole = src.execute("SELECT at::text, who, doc::text, encode(blob, 'hex') FROM audit")
            _, whole_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            del whole
        tracemalloc.start()
        result = run_once(h.config, h.link, h.replica, h.store)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert result.ok, result.summary()
        assert peak < whole_peak / 4, (peak, whole_peak)


def test_keyless_view_that_fails_midway_keeps_the_last_good_copy_and_the_next_table_syncs(sales, make_config):
    sales.sql(
        "CREATE TABLE n (g int); INSERT INTO n SELECT generate_series(1, 5000);"
        "CREATE VIEW shaky AS SELECT g, 1 / (CASE WHEN g = 4500 AND EXISTS "
        "(SELECT 1 FROM pg_tables WHERE tablename = 'trip') THEN 0 ELSE 1 END) AS one FROM n;"
        "CREATE TABLE after_it (id int PRIMARY KEY); INSERT INTO after_it VALUES (1), (2)",
        db="sales",
    )
    cfg = make_config([{"name": "public.shaky"}, {"name": "public.after_it"}], sync={"batch_size": BATCH})
    with Harness(cfg) as h:
        h.sync()
        assert len(h.rows("shaky")) == 5000
        sales.sql("CREATE TABLE trip (x int); INSERT INTO after_it VALUES (3)", db="sales")
        result = run_once(h.config, h.link, h.replica, h.store)
        errors = {t.name: t.error for t in result.tables}
        assert "division by zero" in (errors["public.shaky"] or ""), errors
        assert errors["public.after_it"] is None  # the session was rebuilt for the next table
        assert len(h.rows("shaky")) == 5000  # the last good copy, not a half-read one
        assert len(h.rows("after_it")) == 3
        assert not [r for r in h.replica.db.execute("SELECT name FROM sqlite_master") if "_tmp_" in r[0]]
