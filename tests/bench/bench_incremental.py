"""Benchmark: one incremental cycle with 100 changed rows, in a large and a small table.

Through the real SSH tunnel into SQLite, the agent's own pass (``run_once``). The bulk
rows are stamped months before the lookback window (BRIEF 9), so a cycle reads the 100
changed rows plus the window's recent changes, whatever the table's size. The source has
an index on (updated_at, id), as any table synced by a cursor should (``schema lint``).
Anchor, in the same run: the same cycle on the small table.
Target (BRIEF 6): large-table cycle under 0.5 s and at most 1.5x the small-table cycle.

Run: python tests/bench/bench_incremental.py [SMALL LARGE]   (default 200000 2000000)
"""

from __future__ import annotations

import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sync import fill  # noqa: E402
from support.harness import Harness  # noqa: E402
from support.machine import machine  # noqa: E402
from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import RO_PASSWORD, RO_USER, password_file, sections, write_config  # noqa: E402

CHANGED = 100
CYCLES = 9


def change(pg: PgCluster, rows: int, rng: random.Random) -> None:
    """Change CHANGED random rows the way an application does: new status, new updated_at."""
    ids = ", ".join(str(rng.randint(1, rows)) for _ in range(CHANGED))
    pg.sql(
        f"UPDATE bench SET status = 'changed', updated_at = clock_timestamp() WHERE id IN ({ids})", db="sales"
    )


def cycles(pg: PgCluster, sshd: Sshd, rows: int) -> tuple[list[float], float]:
    """Copy the table, then time CYCLES cycles of CHANGED changed rows each; also return
    the time of the replica's count(*), the part of a cycle that grows with the table."""
    fill(pg, rows)  # the cursor is indexed there
    rng = random.Random(rows)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = write_config(
            work / "bench.toml",
            sections(work / "state", pg, password_file(work / "pw"), sshd),
            [{"name": "public.bench", "cursor": "updated_at"}],
        )
        with Harness(cfg) as h:
            h.sync()  # the initial copy
            h.sync()  # warm: the first incremental pass after a copy re-reads its window
            times = []
            for _ in range(CYCLES):
                change(pg, rows, rng)
                t0 = time.perf_counter()
                result = h.sync()
                times.append(time.perf_counter() - t0)
                assert result.tables[0].written >= CHANGED * 0.9, result.summary()
            t0 = time.perf_counter()
            h.replica.count("bench")
            count = time.perf_counter() - t0
    return times, count


def main(small: int, large: int) -> None:
    print(
        f"bench_incremental: {CHANGED} changed rows per cycle, through the SSH tunnel into "
        f"SQLite on {machine()}"
    )
    pg = PgCluster().init().start()
    sshd = Sshd().start()
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        medians = {}
        for rows in (small, large):
            times, count = cycles(pg, sshd, rows)
            medians[rows] = statistics.median(times)
            print(
                f"  {rows:>9,} rows: cycle median {medians[rows] * 1000:6.1f} ms "
                f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}, {CYCLES} cycles); "
                f"of which the replica's row count {count * 1000:.1f} ms"
            )
        ratio = medians[large] / medians[small]
        print(
            f"  ratio {large:,} / {small:,} rows: {ratio:.2f}x (target <= 1.5x); "
            f"{large:,}-row cycle {medians[large] * 1000:.0f} ms (target < 500 ms)"
        )
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(*(args or [200_000, 2_000_000]))
