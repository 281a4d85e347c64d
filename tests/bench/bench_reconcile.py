"""Benchmark: hard-delete reconciliation of a large table with a few rows deleted at the source.

Through the real SSH tunnel, the agent's own reconciliation (checksum bisection), both
kinds: by keys (every reconcile_every) and by whole rows (every verify_every). Prints
its time and the rows it transferred (checksums, split points, keys with their hashes),
for several numbers of deleted rows and two table sizes: the transfer must grow with the
differences, not with the table. The first reconciliation of a table also hashes every
replica row once (cached afterwards); it is shown on its own line.
Anchor, in the same run: a full re-copy of the keys (every id through the same tunnel,
then the set difference with the replica's ids), which finds deletes and nothing else.

Run: python tests/bench/bench_reconcile.py [ROWS ...]   (default 100000 1000000)
"""

from __future__ import annotations

import random
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

DELETES = (10, 100, 1000)


def key_copy(h: Harness) -> tuple[float, int, int]:
    """The anchor: copy every key from the source and diff them with the replica's."""
    t0 = time.perf_counter()
    theirs = {r[0] for r in h.link.source().execute("SELECT id FROM bench")}
    mine = {r[0] for r in h.replica.db.execute("SELECT id FROM bench")}
    return time.perf_counter() - t0, len(theirs), len(mine - theirs)


def line(label: str, r) -> str:
    return (
        f"    {label:<28} {r.seconds:6.2f}s | {r.transferred:>7,} rows transferred "
        f"({r.keys:,} keys, {r.queries} queries) | {r.removed} removed, "
        f"{r.hashed:,} rows hashed here"
    )


def run(pg: PgCluster, sshd: Sshd, rows: int) -> None:
    fill(pg, rows)
    rng = random.Random(rows)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cfg = write_config(
            work / "bench.toml",
            sections(work / "state", pg, password_file(work / "pw"), sshd),
            [{"name": "public.bench", "cursor": "updated_at"}],
        )
        with Harness(cfg) as h:
            h.sync()
            print(f"  {rows:,} rows:")
            print(line("first (hashes the replica)", h.reconcile()))
            left = list(range(1, rows + 1))
            for kind in ("keys", "rows"):
                for n in DELETES:
                    rng.shuffle(left)
                    ids, left = left[:n], left[n:]
                    pg.sql(f"DELETE FROM bench WHERE id IN ({', '.join(map(str, ids))})", db="sales")
                    result = h.reconcile(kind=kind)
                    assert result.removed == n and result.kind == kind, result.summary()
                    print(line(f"by {kind}: {n} deleted", result))
            seconds, keys, found = key_copy(h)
            print(
                f"    {'anchor: re-copy of the keys':<28} {seconds:6.2f}s | {keys:>7,} rows "
                f"transferred | finds deletes only"
            )


def main(sizes: list[int]) -> None:
    print(f"bench_reconcile: checksum bisection through the SSH tunnel on {machine()}")
    pg = PgCluster().init().start()
    sshd = Sshd().start()
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        for rows in sizes:
            run(pg, sshd, rows)
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
