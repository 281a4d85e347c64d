"""Benchmark: bytes the agent writes to the card per day, for a given change rate.

10 tables of 8 mixed columns at the source, a number of changed rows per hour (random
rows spread over the tables: new status, new amount, new updated_at), history of
``status`` on or off, synced through the real SSH tunnel by the agent's own pass
(``Agent._pass``) every 30 s (the default interval), with what runs between two passes
(a heartbeat per probe interval, 5 s) and what runs hourly (the reconciliation of every
table, the upkeep). A day is simulated, not waited for: the passes run back to back and
the files are flushed after each one, as the kernel does within 30 s
(``dirty_expire_centisecs``), so a page written by every pass counts every time, as it
would on the Pi.

Measured: ``write_bytes`` of /proc/self/io, what this process sent to the block device
(the replica, the state store, their -wal files; the tunnel is a child process and the
source another machine). Each case runs twice, once with the state store in /dev/shm (a
tmpfs, which that count does not see) to count the replica's bytes, once the other way
round; the total is their sum. Not counted: the file system's journal (ext4: a few percent
more) and the card's own write amplification (its controller's business).
Anchor, in the same run: the idle appliance (no change at the source), the floor.

Run: python tests/bench/bench_wear.py [HOURS] [--rows N]   (default 1 simulated hour per
case, scaled to a day; 20000 rows per table). BENCH_DIR=/path puts the files there.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.harness import Harness  # noqa: E402
from support.machine import machine  # noqa: E402
from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import RO_PASSWORD, RO_USER, password_file, sections, write_config  # noqa: E402

from appliance.clock import utcnow  # noqa: E402
from appliance.sync import upkeep  # noqa: E402
from appliance.sync.agent import Agent  # noqa: E402

TABLES = 10
PASSES_PER_HOUR = 120  # sync.interval = 30s, the default
HEARTBEATS_PER_PASS = 5  # Agent._wait beats once per probe_interval (5 s) between passes
CASES = [(0, False), (1_000, False), (1_000, True), (10_000, False), (10_000, True)]
_DIR = os.environ.get("BENCH_DIR")  # where the files go (default: the temp dir); not a tmpfs
SHM = "/dev/shm"  # a tmpfs: what is written there is not counted
COLUMNS = """id bigint PRIMARY KEY, qty int, status text, amount numeric(12,2), doc jsonb,
             created_at timestamptz, updated_at timestamptz NOT NULL, note text"""


def fill(pg: PgCluster, rows: int) -> None:
    """Create tables t0..t9 of ``rows`` rows each, stamped long before the lookback window."""
    for n in range(TABLES):
        pg.sql(f"DROP TABLE IF EXISTS t{n}", db="sales")
        pg.sql(f"CREATE TABLE t{n} ({COLUMNS})", db="sales")
        pg.sql(
            f"""INSERT INTO t{n} SELECT g, g % 100,
            (ARRAY['new','paid','shipped','cancelled'])[g % 4 + 1], (g % 100000) / 100.0,
            jsonb_build_object('channel', 'web', 'items', g % 7),
            '2024-01-01'::timestamptz + g * interval '1 second',
            '2024-06-01'::timestamptz + g * interval '1 second',
            'customer note ' || md5(g::text)
            FROM generate_series(1, {rows}) g""",
            db="sales",
        )
        pg.sql(f"CREATE INDEX t{n}_updated_at ON t{n} (updated_at, id)", db="sales")
        pg.sql(f"VACUUM ANALYZE t{n}", db="sales")


def change(pg: PgCluster, rows: int, count: int, rng: random.Random) -> None:
    """Change ``count`` random rows, each in a random table, the way an application does."""
    if count <= 0:
        return
    by_table: dict[int, list[int]] = {}
    for _ in range(count):
        by_table.setdefault(rng.randrange(TABLES), []).append(rng.randint(1, rows))
    pg.sql(
        "; ".join(
            f"UPDATE t{n} SET status = (ARRAY['new','paid','shipped','cancelled'])[1 + (random() * 3)::int], "
            f"amount = amount + 1, updated_at = clock_timestamp() WHERE id IN ({', '.join(map(str, ids))})"
            for n, ids in by_table.items()
        ),
        db="sales",
    )


def written() -> int:
    """Return the bytes this process has sent to block devices so far."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no write_bytes")


def flush(paths: list[Path]) -> None:
    """Write the files' dirty pages out now, as the kernel would before the next pass."""
    for path in paths:
        if path.exists():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def one_case(pg: PgCluster, sshd: Sshd, rows: int, per_hour: int, history: bool, hours: int, counted: str):
    """Return (initial copy bytes, bytes per simulated hour, file MB) of one file for a case.

    ``counted`` ("replica" or "state") is the file on the disk; the other one lives in
    /dev/shm, a tmpfs, which the block-device count does not see.
    """
    rng = random.Random(per_hour)
    history_cols = {"history": ["status"]} if history else {}
    tables = [{"name": f"public.t{n}", "cursor": "updated_at", **history_cols} for n in range(TABLES)]
    replica_dir, state_dir = (_DIR, SHM) if counted == "replica" else (SHM, _DIR)
    with (
        tempfile.TemporaryDirectory(dir=_DIR) as tmp,
        tempfile.TemporaryDirectory(dir=replica_dir) as replica_tmp,
        tempfile.TemporaryDirectory(dir=state_dir) as state_tmp,
    ):
        work = Path(tmp)
        cfg = write_config(
            work / "bench.toml",
            sections(
                Path(state_tmp) / "state",
                pg,
                password_file(work / "pw"),
                sshd,
                sync={"interval": "30s"},
                replica={"url": f"sqlite:///{Path(replica_tmp) / 'replica.sqlite'}"},
            ),
            tables,
        )
        with Harness(cfg) as h:
            files = [Path(h.replica.path), h.store.path]
            files += [Path(f"{f}-wal") for f in files]
            agent = Agent(h.config, h.link, h.replica, h.store)
            start = written()
            agent._pass()  # the initial copy, as the agent's first pass does it
            # The first reconciliation hashes every row once (then only the rows changed
            # since): part of the start, not of every hour.
            agent._pass(reconcile=True)
            now = utcnow()
            upkeep.run(h.config, h.replica, h.store, now)
            flush(files)
            copied = written() - start
            start, done = written(), 0
            for p in range(hours * PASSES_PER_HOUR):
                due = round(per_hour * (p + 1) / PASSES_PER_HOUR) - done
                change(pg, rows, due, rng)
                done += due
                hourly = p % PASSES_PER_HOUR == PASSES_PER_HOUR - 1
                result, _ = agent._pass(reconcile=hourly)  # reconcile_every = 1h, the default
                assert not result.error and result.ok, result.summary()
                for _ in range(HEARTBEATS_PER_PASS):
                    agent.heartbeat(force=True)
                if hourly:
                    upkeep.run(
                        h.config, h.replica, h.store, now + timedelta(hours=(p + 1) // PASSES_PER_HOUR)
                    )
                flush(files)
            per_hour_bytes = (written() - start) / hours
            size = sum(f.stat().st_size for f in files[(0 if counted == "replica" else 1) :: 2] if f.exists())
    return copied, per_hour_bytes, size / 1e6


def main(hours: int, rows: int) -> None:
    logging.basicConfig(level=logging.WARNING)
    print(
        f"bench_wear: {TABLES} tables x {rows:,} rows, a pass every 30 s, {hours} simulated hour(s) "
        f"per case scaled to a day; files in {_DIR or tempfile.gettempdir()}; on {machine()}"
    )
    pg = PgCluster().init().start()
    sshd = Sshd().start()
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        fill(pg, rows)
        print(
            f"  {'changes/hour':>12} {'history':>7} | {'MB/day':>7} {'replica':>8} {'state':>6} | "
            f"{'copy MB':>7} | {'files MB':>8} | {'s':>4}"
        )
        floor = None
        for per_hour, history in CASES:
            t0 = time.monotonic()
            copied, replica, replica_mb = one_case(pg, sshd, rows, per_hour, history, hours, "replica")
            _, state, state_mb = one_case(pg, sshd, rows, per_hour, history, hours, "state")
            total = replica + state
            floor = floor if floor is not None else total
            day = 24 / 1e6
            print(
                f"  {per_hour:>12,} {'on' if history else 'off':>7} | {total * day:>7.0f} "
                f"{replica * day:>8.0f} {state * day:>6.0f} | {copied / 1e6:>7.1f} | "
                f"{replica_mb + state_mb:>8.1f} | {time.monotonic() - t0:>4.0f}"
                + (f"   {total / floor:.1f}x idle" if per_hour else "   (idle: the anchor)")
            )
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("hours", nargs="?", type=int, default=1)
    parser.add_argument("--rows", type=int, default=20_000)
    args = parser.parse_args()
    main(args.hours, args.rows)
