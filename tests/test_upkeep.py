"""Upkeep of the SQLite files: incremental vacuum (converting old files once), WAL checkpoints."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support.harness import Harness

from appliance.clock import iso
from appliance.config import parse
from appliance.health.store import StateStore
from appliance.sync import upkeep
from appliance.sync.agent import Agent
from appliance.sync.replica import WAL_SIZE_LIMIT, Replica

NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def _config(state_dir: Path, replica: Path):
    return parse(
        {
            "appliance": {"state_dir": str(state_dir)},
            "source": {"host": "db", "database": "d", "user": "u"},
            "replica": {"url": f"sqlite:///{replica}"},
            "tables": [{"name": "public.t"}],
        }
    )


def _old_file(path: Path, rows: int, width: int = 500) -> None:
    """Write a SQLite file the way this appliance did before upkeep: no auto_vacuum."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    db.execute("BEGIN")
    db.executemany("INSERT INTO t VALUES (?, ?)", ((i, f"{i:08d}" * (width // 8)) for i in range(rows)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def _wal(path: Path | str) -> int:
    wal = Path(f"{path}-wal")
    return wal.stat().st_size if wal.exists() else 0


def test_upkeep_converts_an_old_file_once_and_it_shrinks_after_deletes(tmp_path):
    state, path = tmp_path / "state", tmp_path / "replica.sqlite"
    state.mkdir()
    _old_file(path, rows=20_000)  # about 10 MB
    _old_file(state / "state.sqlite", rows=10)  # a state store from before upkeep, too
    cfg = _config(state, path)
    with Replica(cfg.replica_url) as replica, StateStore(state) as store:
        assert upkeep.auto_vacuum(replica.db) == "none" and upkeep.auto_vacuum(store.db) == "none"
        first = upkeep.run(cfg, replica, store, NOW)
        assert [f.converted for f in first.files] == [True, True]
        assert upkeep.auto_vacuum(replica.db) == "incremental" == upkeep.auto_vacuum(store.db)
        again = upkeep.run(cfg, replica, store, NOW + HOUR)
        assert [f.converted for f in again.files] == [False, False]  # once per file
        full = path.stat().st_size
        replica.db.execute("DELETE FROM t WHERE id >= 2000")
        assert path.stat().st_size == full  # SQLite keeps freed pages: the file stays as big
        freed = upkeep.run(cfg, replica, store, NOW + 2 * HOUR).files[0].pages_freed
        assert freed > 1000 and path.stat().st_size < full / 3
        assert replica.count("t") == 2000 and replica.damage() == ""
        # A few free pages stay for the next inserts, which would otherwise grow the file at once.
        free = replica.db.execute("PRAGMA freelist_count").fetchone()[0]
        assert 0 < free <= upkeep.KEEP_FREE_PAGES


def test_upkeep_new_files_need_no_conversion(tmp_path):
    state, path = tmp_path / "state", tmp_path / "replica.sqlite"
    cfg = _config(state, path)
    with Replica(cfg.replica_url) as replica, StateStore(state) as store:
        assert upkeep.auto_vacuum(replica.db) == "incremental" == upkeep.auto_vacuum(store.db)
        report = upkeep.run(cfg, replica, store, NOW)
    assert [(f.converted, f.skipped) for f in report.files] == [(False, ""), (False, "")]


def test_upkeep_shrinks_in_bounded_steps(tmp_path):
    state, path = tmp_path / "state", tmp_path / "replica.sqlite"
    cfg = _config(state, path)
    with Replica(cfg.replica_url) as replica:
        replica.db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
        replica.db.executemany("INSERT INTO t VALUES (?, ?)", ((i, "x" * 900) for i in range(5000)))
        replica.db.execute("DELETE FROM t")
        statements = []
        replica.db.set_trace_callback(statements.append)
        freed = upkeep.shrink(replica.db, keep_free=10, step=100, steps=3)
        replica.db.set_trace_callback(None)
        vacuums = [s for s in statements if "incremental_vacuum" in s]
        assert freed == 300 and vacuums == ["PRAGMA incremental_vacuum(100)"] * 3


def test_upkeep_skips_the_conversion_with_one_event_when_the_disk_has_no_room(tmp_path, small_disk):
    state, path = tmp_path / "state", small_disk / "replica.sqlite"
    _old_file(path, rows=8_000)  # about 4 MB: a conversion needs 8 MB more, plus the margin
    (small_disk / "filler").write_bytes(b"\0" * 5_000_000)
    cfg = _config(state, path)
    with Replica(cfg.replica_url) as replica, StateStore(state) as store:
        for hour in range(3):
            report = upkeep.run(cfg, replica, store, NOW + hour * HOUR)
            assert not report.files[0].converted and "not converted" in report.files[0].skipped
        assert upkeep.auto_vacuum(replica.db) == "none" and replica.count("t") == 8000
        said = [e["message"] for e in store.events() if e["kind"] == "upkeep"]
        assert len(said) == 1  # once, not every hour
        assert str(path) in said[0] and "MB free on" in said[0] and "min_free_mb" in said[0]
        assert "apt-get clean" in said[0]
        (small_disk / "filler").unlink()  # room again: the next upkeep converts it
        report = upkeep.run(cfg, replica, store, NOW + 3 * HOUR)
        assert report.files[0].converted and upkeep.auto_vacuum(replica.db) == "incremental"
        assert replica.count("t") == 8000 and store.get(upkeep.MARK)["skipped"] == []


def test_upkeep_checkpoint_gives_way_to_a_reader_then_truncates(tmp_path):
    path = tmp_path / "replica.sqlite"
    with Replica(f"sqlite:///{path}") as replica:
        replica.db.execute("CREATE TABLE t (v TEXT)")
        replica.db.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 200)
        page = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        page.execute("BEGIN")
        page.execute("SELECT count(*) FROM t").fetchone()  # the page reads an old snapshot
        replica.db.executemany("INSERT INTO t VALUES (?)", [("y" * 100,)] * 200)
        assert upkeep.checkpoint(replica.db) == "passive" and _wal(path) > 0
        assert replica.db.execute("PRAGMA busy_timeout").fetchone()[0] == 10000  # restored
        page.execute("COMMIT")
        assert upkeep.checkpoint(replica.db) == "truncate" and _wal(path) == 0
        page.close()


def test_upkeep_keeps_the_wal_bounded_across_many_passes(sales, make_config):
    sales.sql(
        "CREATE TABLE docs (id int PRIMARY KEY, body text, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO docs SELECT g, repeat(md5(g::text), 20), '2024-01-01' FROM generate_series(1, 20000) g",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.docs", "cursor": "updated_at"}], sync={"batch_size": 50_000, "lookback": "0s"}
    )

    def change(n: int, every: int = 500) -> None:
        sales.sql(
            "UPDATE docs SET body = reverse(body), updated_at = now() WHERE id %% %s = %s",
            (every, n),
            db="sales",
        )

    with Harness(cfg) as h:
        path = h.replica.path
        h.sync()  # the initial copy: one 13 MB batch; the size limit cuts its -wal afterwards
        assert 0 < _wal(path) <= WAL_SIZE_LIMIT
        # A reader holding one snapshot for hours (a stuck page) keeps any checkpoint from
        # finishing: the -wal grows while it holds on, and the upkeep gives way to it.
        page = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        page.execute("BEGIN")
        page.execute("SELECT count(*) FROM docs").fetchone()
        for n in range(3):
            change(n, every=4)  # a quarter of the table each time
            h.sync()
        held = _wal(path)
        assert upkeep.run(h.config, h.replica, h.store, NOW).files[0].checkpoint == "passive"
        page.execute("COMMIT")
        sizes, store_sizes = [], []
        for n in range(3, 21):
            change(n)
            h.sync()
            if n % 6 == 2:  # the agent's hourly upkeep, every sixth pass here
                report = upkeep.run(h.config, h.replica, h.store, NOW + (n + 1) * HOUR)
                assert [f.checkpoint for f in report.files] == ["truncate", "truncate"]
                assert _wal(path) == 0 and _wal(h.store.path) < 65536  # the upkeep's own record
            sizes.append(_wal(path))
            store_sizes.append(_wal(h.store.path))
        page.close()
    assert held > WAL_SIZE_LIMIT  # the starved -wal outgrew the limit ...
    assert max(sizes) <= WAL_SIZE_LIMIT and max(store_sizes) <= WAL_SIZE_LIMIT  # ... not for long
    assert 0 in sizes


def test_upkeep_runs_from_the_agent_at_most_hourly(sales, make_config):
    sales.sql(
        "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())", db="sales"
    )
    cfg = make_config([{"name": "public.t", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        assert upkeep.due(h.store, NOW)
        Agent(h.config, h.link, h.replica, h.store).run(once=True)
        mark = h.store.get(upkeep.MARK)
        assert mark["at"] and "upkeep:" in mark["line"]
        Agent(h.config, h.link, h.replica, h.store).run(once=True)
        assert h.store.get(upkeep.MARK)["at"] == mark["at"]  # not due again within the hour


def test_upkeep_is_due_hourly_and_after_the_clock_went_back(tmp_path):
    with StateStore(tmp_path) as store:
        assert upkeep.due(store, NOW)
        store.put(upkeep.MARK, {"at": iso(NOW)})
        assert not upkeep.due(store, NOW + 59 * timedelta(minutes=1))
        assert upkeep.due(store, NOW + HOUR)
        # A Pi without a real-time clock: the last run stamped by a clock that was ahead.
        assert upkeep.due(store, NOW - 2 * HOUR)
