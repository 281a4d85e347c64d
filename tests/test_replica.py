"""The replica's bulk insert: rows grouped many per statement land exactly as given."""

from __future__ import annotations

import pytest

from appliance.schema.shape import Column
from appliance.sync.replica import ROWS_PER_INSERT, Replica


def _table(replica: Replica, width: int) -> list[str]:
    names = ["id"] + [f"c{i}" for i in range(1, width)]
    cols = [Column("id", "bigint", "integer")] + [Column(n, "text", "text") for n in names[1:]]
    with replica.transaction():
        replica.create_table("t", cols, ["id"])
    return names


def _rows(count: int, width: int) -> list[tuple]:
    # NULLs, empty strings and quotes on different rows: a shifted value would show.
    return [
        (i, *[None if (i + j) % 7 == 0 else f"v{i}'{j}" if j % 2 else "" for j in range(1, width)])
        for i in range(count)
    ]


@pytest.mark.parametrize(
    "count", [0, 1, ROWS_PER_INSERT - 1, ROWS_PER_INSERT, ROWS_PER_INSERT + 1, 3 * ROWS_PER_INSERT + 17]
)
def test_insert_groups_rows_without_shifting_values(tmp_path, count):
    with Replica(f"sqlite:///{tmp_path / 'r.sqlite'}") as replica:
        names = _table(replica, 8)
        rows = _rows(count, 8)
        with replica.transaction():
            replica.insert("t", names, rows)
        got = replica.db.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert got == rows


def test_insert_of_a_wide_table_stays_under_the_parameter_limit(tmp_path):
    # 400 columns: at most 2 rows per statement fit in 999 parameters.
    with Replica(f"sqlite:///{tmp_path / 'r.sqlite'}") as replica:
        names = _table(replica, 400)
        rows = _rows(11, 400)
        with replica.transaction():
            replica.insert("t", names, iter(rows))  # any iterable, not only lists
        got = replica.db.execute("SELECT * FROM t ORDER BY id").fetchall()
    assert got == rows


def test_insert_refuses_a_row_of_the_wrong_width(tmp_path):
    with Replica(f"sqlite:///{tmp_path / 'r.sqlite'}") as replica:
        names = _table(replica, 3)
        rows = _rows(ROWS_PER_INSERT, 3)
        rows[5] = rows[5][:2]
        with pytest.raises(ValueError, match="3 values"), replica.transaction():
            replica.insert("t", names, rows)
        assert replica.db.execute("SELECT count(*) FROM t").fetchone()[0] == 0


def test_none_binds_null_through_the_registered_adapter(tmp_path):
    import sqlite3

    # registered by appliance.replica: NULLs skip the slow adapter search
    assert (type(None), sqlite3.PrepareProtocol) in sqlite3.adapters
    with Replica(f"sqlite:///{tmp_path / 'r.sqlite'}") as replica:
        names = _table(replica, 3)
        with replica.transaction():
            replica.insert("t", names, [(1, None, "")])
        assert replica.db.execute("SELECT typeof(c1), typeof(c2) FROM t").fetchone() == ("null", "text")


def test_replica_and_state_store_files_are_made_group_writable_under_the_units_umask(tmp_path):
    # The page (another user of the group) writes acknowledgements into the state store and
    # may open the replica first: SQLite alone would make both 0640 under UMask=0007.
    import os
    import stat

    from appliance.health.store import StateStore
    from appliance.sync.replica import Replica

    old = os.umask(0o007)
    try:
        with StateStore(tmp_path / "state"), Replica(f"sqlite:///{tmp_path / 'state' / 'replica.sqlite'}"):
            pass
    finally:
        os.umask(old)
    for name in ("state.sqlite", "replica.sqlite"):
        assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o660, name
