"""High-water marks (sync/marks.py): one table's trouble stays that table's, and cursor
values that cannot be a time of change never stop the rows that follow them."""

from __future__ import annotations

import psycopg2
import pytest
from support.harness import Harness
from support.pg import SUPERUSER_PASSWORD

from appliance.health.status import current_status
from appliance.schema.shape import Column
from appliance.sync.agent import run_once
from appliance.sync.marks import Mark, beyond


def _same(a, b) -> bool:
    """Return True when two cursor values are equal (a float column's REAL against its text)."""
    try:
        return float(a) == float(b)
    except ValueError:
        return str(a) == str(b)


def _table(h: Harness, name: str):
    return next(t for t in current_status(h.config)["tables"] if t["name"] == name)


def test_marks_a_locked_table_fails_alone_and_syncs_once_released(sales, make_config):
    sales.sql(
        "CREATE TABLE good (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE busy (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO good VALUES (1, 'a'); INSERT INTO busy VALUES (1)",
        db="sales",
    )
    tables = [
        {"name": "public.good", "cursor": "updated_at"},
        {"name": "public.busy", "cursor": "updated_at"},
    ]
    cfg = make_config(tables, source={"statement_timeout": "1s"})
    with Harness(cfg) as h:
        h.sync()
        sales.sql("INSERT INTO good VALUES (2, 'b'); INSERT INTO busy VALUES (2)", db="sales")
        migration = psycopg2.connect(
            host="127.0.0.1", port=sales.port, dbname="sales", user="postgres", password=SUPERUSER_PASSWORD
        )
        try:
            migration.cursor().execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
            locked = run_once(h.config, h.link, h.replica, h.store)
        finally:
            migration.rollback()
            migration.close()
        assert locked.error is None, locked.error
        errors = {t.name: t.error for t in locked.tables}
        assert errors["public.good"] is None
        assert "high-water mark of public.busy could not be read" in errors["public.busy"]
        assert [r["id"] for r in h.rows("good")] == [1, 2]
        assert current_status(h.config)["source"]["database"] == "up"  # no outage: one table failed
        h.sync()  # the lock is gone: the table catches up
        assert [r["id"] for r in h.rows("busy")] == [1, 2]


# (column type, rows 1-2, the value that cannot be a time of change, a newer real value)
SENTINELS = [
    ("timestamptz", "now() - interval '1 hour'", "'infinity'", "now()"),
    ("timestamptz", "now() - interval '1 hour'", "'9999-12-31 00:00+00'", "now()"),
    ("timestamptz", "now() - interval '1 hour'", "now() + interval '1 day'", "now()"),
    ("timestamp", "localtimestamp - interval '1 hour'", "'infinity'", "localtimestamp"),
    ("timestamp", "localtimestamp - interval '1 hour'", "'9999-12-31 00:00'", "localtimestamp"),
    ("date", "current_date - 2", "'infinity'", "current_date"),
    ("numeric(12,2)", "1", "'NaN'", "5"),
    ("numeric", "1", "'Infinity'", "5"),
    ("float8", "1", "'Infinity'", "5"),
    ("float8", "1", "'NaN'", "5"),
]


@pytest.mark.parametrize(("kind", "old", "sentinel", "new"), SENTINELS)
def test_marks_a_cursor_value_that_cannot_be_real_does_not_stop_the_rows_after_it(
    sales, make_config, kind, old, sentinel, new
):
    sales.sql(
        f"CREATE TABLE t (id int PRIMARY KEY, v text, c {kind} NOT NULL);"
        f"INSERT INTO t VALUES (1, 'a', {old}), (2, 'b', {old}), (3, 'sentinel', {sentinel})",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "c"}], tunnel=False)
    with Harness(cfg) as h:
        h.sync()
        sales.sql(f"INSERT INTO t VALUES (4, 'new', {new})", db="sales")
        h.sync()
        assert [r["id"] for r in h.rows("t")] == [1, 2, 3, 4]
        assert _same(h.replica.state("t").cursor_value, h.rows("t", where="id = 4")[0]["c"])
        # the rows beyond the range are read each pass: a change that keeps the value arrives,
        # and so does a new row holding one
        sales.sql(
            f"UPDATE t SET v = 'changed' WHERE id = 3; INSERT INTO t VALUES (5, 'also', {sentinel})",
            db="sales",
        )
        result = h.sync()
        assert {r["id"]: r["v"] for r in h.rows("t")}[3] == "changed"
        assert [r["id"] for r in h.rows("t")] == [1, 2, 3, 4, 5]
        assert "2 row(s) hold a c that cannot be a time of change" in result.tables[0].note
        assert "read again every pass" in _table(h, "public.t")["note"]


def test_marks_negative_infinity_rows_are_read_every_pass(sales, make_config):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, c timestamptz NOT NULL);"
        "INSERT INTO t VALUES (1, 'a', now() - interval '1 hour'), (2, 'early', '-infinity')",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "c"}], tunnel=False)
    with Harness(cfg) as h:
        h.sync()
        sales.sql(
            "UPDATE t SET v = 'changed' WHERE id = 2; INSERT INTO t VALUES (3, 'x', '-infinity')", db="sales"
        )
        h.sync()
        assert [(r["id"], r["v"], r["c"]) for r in h.rows("t") if r["id"] > 1] == [
            (2, "changed", "-infinity"),
            (3, "x", "-infinity"),
        ]


def test_marks_a_row_a_little_ahead_of_the_clock_is_an_ordinary_mark(sales, make_config):
    """Inside the lookback: the next pass's window still reaches rows written meanwhile."""
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, c timestamptz NOT NULL);"
        "INSERT INTO t VALUES (1, 'a', now() + interval '2 minutes')",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "c"}], tunnel=False, sync={"lookback": "10m"})
    with Harness(cfg) as h:
        result = h.sync()
        assert result.tables[0].note is None
        assert h.replica.state("t").cursor_value == h.rows("t")[0]["c"]  # the mark is that row
        sales.sql("INSERT INTO t VALUES (2, 'b', now())", db="sales")
        h.sync()
        assert [r["id"] for r in h.rows("t")] == [1, 2]


def test_marks_a_cursor_stored_at_infinity_by_an_older_agent_catches_up(sales, make_config):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, c timestamptz NOT NULL);"
        "INSERT INTO t VALUES (1, 'a', now() - interval '1 day'), (2, 'sentinel', 'infinity')",
        db="sales",
    )
    cfg = make_config([{"name": "public.t", "cursor": "c"}], tunnel=False)
    with Harness(cfg) as h:
        h.sync()
        st = h.replica.state("t")
        with h.replica.transaction():  # what an agent before the fix stored: the maximum
            st.cursor_value, st.mark = "infinity", None
            h.replica.save_state(st)
        # a row that such an agent never read: older than infinity - lookback
        sales.sql("INSERT INTO t VALUES (3, 'missed', now() - interval '1 hour')", db="sales")
        h.sync()
        assert [r["id"] for r in h.rows("t")] == [1, 2, 3]
        assert h.replica.state("t").cursor_value == h.rows("t", where="id = 3")[0]["c"]


def test_marks_beyond_says_which_stored_cursors_cannot_be_read_from():
    ts = Column("c", "timestamp with time zone", "timestamptz")
    mark = Mark("2026-01-01T00:00:00.000000Z", "1:1", ceiling="2026-01-01T00:10:00.000000Z")
    assert beyond("infinity", mark, ts)
    assert beyond("9999-12-31T00:00:00.000000Z", mark, ts)
    assert not beyond("2026-01-01T00:05:00.000000Z", mark, ts)
    num = Column("n", "numeric", "numeric")
    assert beyond("NaN", mark, num) and beyond("1e301", mark, num) and not beyond("12.5", mark, num)
    assert not beyond(None, mark, num)
