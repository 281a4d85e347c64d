"""Page sizes bounded by bytes (sync/pacing.py): large rows never fill the agent's memory.

The peaks are measured in a child process running `appliance sync --once` against the real
cluster, as a user runs it (its VmHWM: support/peak.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.harness import Harness
from support.peak import sync_peak_mb
from support.tomlconf import password_file, sections, write_config

from appliance.sync import pacing
from appliance.sync.marks import Wanted, read_marks

MB = 1 << 20
# 200 rows of 1 MB: 200 MB in one page of sync.batch_size (1000) rows; the bound is
# what the agent needs with pages of PAGE_BYTES (two alive at once, one batch in Python).
PEAK_MB = 150
DOCS = "INSERT INTO docs SELECT g, repeat(md5(g::text), 31250), now() FROM generate_series(1, 200) g"


def test_pacing_a_page_of_large_rows_is_cut_to_the_byte_budget():
    big = [["x" * MB]] * 10
    assert pacing.next_limit(1000, big, 0.5, 0.0, 1000) == pacing.PAGE_BYTES // MB
    # and on a distant link too, where pages otherwise grow
    assert pacing.next_limit(1000, big, 0.01, 0.1, 1000) == pacing.PAGE_BYTES // MB
    # a row larger than the budget is still read, one per page
    assert pacing.next_limit(1000, [["x" * (pacing.PAGE_BYTES * 2)]], 0.5, 0.0, 1000) == 1


def test_pacing_small_rows_keep_batch_size_and_grow_only_over_a_distant_link():
    small = [["abc", "2024-01-01T00:00:00.000000Z", 12]] * 10
    assert pacing.next_limit(16, small, 0.5, 0.0, 20000) == 20000  # back to batch_size at once
    assert pacing.next_limit(20000, small, 0.5, 0.0, 20000) == 20000  # loopback: no growth
    assert pacing.next_limit(20000, small, 0.5, 0.1, 20000) == 40000  # the round trip dominates
    assert pacing.first_limit(20000, 100.0) == 20000
    assert pacing.first_limit(20000, float(MB)) == pacing.PAGE_BYTES // MB


def _config(tmp_path: Path, pg, table: dict) -> Path:
    values = sections(
        tmp_path / "state",
        pg,
        password_file(tmp_path / "source.password"),
        sync={"interval": "1s", "batch_size": 1000},
    )
    return write_config(tmp_path / "appliance.toml", values, [table])


def _replica(tmp_path: Path) -> sqlite3.Connection:
    return sqlite3.connect(tmp_path / "state" / "replica.sqlite")


def test_pacing_a_keyless_table_of_large_rows_is_streamed_in_small_fetches(sales, tmp_path):
    sales.sql(
        "CREATE TABLE docs (id int, body text, updated_at timestamptz);" + DOCS,
        db="sales",
    )
    cfg = _config(tmp_path, sales, {"name": "public.docs"})
    peak = sync_peak_mb(cfg)
    assert peak < PEAK_MB, f"the refresh of a keyless table of 1 MB rows peaked at {peak} MB"
    with _replica(tmp_path) as db:
        assert db.execute("SELECT count(*), sum(length(body)) FROM docs").fetchone() == (200, 200 * 10**6)


def test_pacing_rows_read_again_by_reconciliation_come_in_small_chunks(sales, tmp_path):
    sales.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, updated_at timestamptz NOT NULL);"
        + DOCS.replace("now()", "now() - interval '1 day'"),
        db="sales",
    )
    cfg = _config(tmp_path, sales, {"name": "public.docs", "cursor": "updated_at"})
    sync_peak_mb(cfg)  # the copy
    with _replica(tmp_path) as db:  # the replica lost rows (or holds them changed): all read again
        db.execute("UPDATE docs SET body = 'stale'")
    peak = sync_peak_mb(cfg, "--reconcile")
    assert peak < PEAK_MB, f"reconciliation re-reading 1 MB rows peaked at {peak} MB"
    with _replica(tmp_path) as db:
        assert db.execute("SELECT count(*) FROM docs WHERE length(body) = 1000000").fetchone() == (200,)


def test_pacing_an_incremental_read_of_large_rows_stays_small(sales, tmp_path):
    sales.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, updated_at timestamptz NOT NULL);"
        + DOCS.replace("now()", "now() - interval '1 day'"),
        db="sales",
    )
    cfg = _config(tmp_path, sales, {"name": "public.docs", "cursor": "updated_at"})
    sync_peak_mb(cfg)  # the copy
    sales.sql("UPDATE docs SET body = upper(body), updated_at = now()", db="sales")
    peak = sync_peak_mb(cfg)
    assert peak < PEAK_MB, f"an incremental read of 200 rows of 1 MB peaked at {peak} MB"
    with _replica(tmp_path) as db:
        assert db.execute("SELECT count(*) FROM docs WHERE body = upper(body)").fetchone() == (200,)


def test_pacing_the_marks_statement_measures_the_newest_rows(sales, make_config):
    """Given the columns read, the pass's one statement also says how large the newest rows
    are, so a window that grew from small rows to large ones is sized before it is read."""
    sales.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, blob bytea, updated_at timestamptz NOT NULL);"
        "INSERT INTO docs SELECT g, 'small', NULL, now() - interval '1 day' FROM generate_series(1, 50) g;"
        "INSERT INTO docs VALUES (51, repeat('x', 1000000), decode('00ff', 'hex'), now())",
        db="sales",
    )
    cfg = make_config([{"name": "public.docs", "cursor": "updated_at"}], tunnel=False)
    with Harness(cfg) as h:
        source = h.link.source()
        shape = source.describe(["public.docs"])["public.docs"]
        cursor, key = shape.column("updated_at"), [shape.column("id")]
        table = h.config.tables[0]
        sized = read_marks(source, [Wanted(table, cursor, key, shape.columns)], 600.0)["public.docs"]
        unsized = read_marks(source, [Wanted(table, cursor, key)], 600.0)["public.docs"]
    # 1,000,000 of text, 4 hex digits, 8 for the id and 27 for the timestamp's text
    assert sized.size == 1_000_000 + 4 + 8 + 27, sized
    assert unsized.size is None and unsized.upper == sized.upper
    assert pacing.first_limit(1000, sized.size) == pacing.PAGE_BYTES // 1_000_039
