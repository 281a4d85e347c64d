"""The SQL time limit ends long function calls too: a thread interrupts at the deadline."""

from __future__ import annotations

import sqlite3

import pytest

from appliance.web.replica_read import PROGRESS_STEPS, QueryTimeout, ReadOnly

# 40 rows of one long instr() each (about 25 ms apiece here): a few hundred VM steps in
# all, fewer than PROGRESS_STEPS, so the progress handler never looks at the clock.
LONG_CALLS = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40) "
    "SELECT instr(printf('%.*c', 400000 + x, 'a'), printf('%.*c', 4000, 'a') || 'b') FROM c"
)


@pytest.fixture
def replica(tmp_path):
    path = tmp_path / "replica.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
    db.close()
    return path


def test_interrupts_the_statement_is_few_steps_of_long_calls():
    # What the guard is for: the progress handler alone would let this query finish.
    steps = [0]
    db = sqlite3.connect(":memory:")
    db.set_progress_handler(lambda: steps.__setitem__(0, steps[0] + 1), PROGRESS_STEPS)
    assert len(db.execute(LONG_CALLS).fetchall()) == 40
    assert steps[0] == 0
    db.close()


def test_interrupts_a_long_function_call_query_ends_at_its_limit(replica):
    with ReadOnly(replica, user=True, time_limit=0.2) as ro:
        with pytest.raises(QueryTimeout, match="longer than its limit of 0.2 s"):
            ro.fetch(ro.execute(LONG_CALLS), 100)


def test_interrupts_the_connection_serves_the_next_query(replica):
    ro = ReadOnly(replica, user=True, time_limit=0.2)
    try:
        with pytest.raises(QueryTimeout):
            ro.fetch(ro.execute(LONG_CALLS), 100)
        ro.spent = 0.0  # a new request's budget, as pooled() gives it
        assert ro.fetch(ro.execute("SELECT count(*) FROM t"), 1) == [(0,)]
    finally:
        ro.close()


def test_interrupts_a_query_within_its_limit_is_not_ended(replica):
    with ReadOnly(replica, user=True, time_limit=60) as ro:
        assert len(ro.fetch(ro.execute(LONG_CALLS), 100)) == 40
