"""Benchmark: initial sync of N rows (8 mixed columns) through the real SSH tunnel into SQLite.

Anchor, in the same run: `psql \\copy (SELECT ...) TO STDOUT | sqlite3 .import` through an
OpenSSH tunnel (ssh -L). Prints both times, the throughput ratio and our peak RSS.
Target (BRIEF 6): ratio >= 0.8, peak RSS < 150 MB and flat in N.

Run: python tests/bench/bench_sync.py [ROWS ...]   (default 1000000)
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.machine import machine  # noqa: E402, F401 - the benches share it
from support.pg import PgCluster, free_port  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import (  # noqa: E402
    RO_PASSWORD,
    RO_USER,
    password_file,
    sections,
    write_config,
)

COLUMNS = """id bigint PRIMARY KEY, qty int, status text, amount numeric(12,2), doc jsonb,
             created_at timestamptz, updated_at timestamptz NOT NULL, shipped_at timestamptz"""
SQLITE_COLUMNS = (
    "id INTEGER PRIMARY KEY, qty INTEGER, status TEXT, amount TEXT, doc TEXT, "
    "created_at TEXT, updated_at TEXT, shipped_at TEXT"
)


def fill(pg: PgCluster, rows: int) -> None:
    pg.sql("DROP TABLE IF EXISTS bench", db="sales")
    pg.sql(f"CREATE TABLE bench ({COLUMNS})", db="sales")
    pg.sql(
        f"""INSERT INTO bench SELECT g, g % 100,
        (ARRAY['new','paid','shipped','cancelled'])[g % 4 + 1], (g % 100000) / 100.0,
        jsonb_build_object('channel', 'web', 'items', g % 7),
        '2024-01-01'::timestamptz + g * interval '1 second',
        '2024-06-01'::timestamptz + g * interval '1 second',
        CASE WHEN g % 2 = 0 THEN '2024-07-01'::timestamptz + g * interval '1 second' END
        FROM generate_series(1, {rows}) g""",
        db="sales",
    )
    pg.sql("VACUUM ANALYZE bench", db="sales")


def anchor(pg: PgCluster, sshd: Sshd, work: Path) -> float:
    """psql \\copy | sqlite3 .import through an OpenSSH tunnel (ssh -L)."""
    port = free_port()
    tunnel = subprocess.Popen(
        [
            "ssh",
            "-N",
            "-L",
            f"127.0.0.1:{port}:127.0.0.1:{pg.port}",
            "-p",
            str(sshd.port),
            "-i",
            str(sshd.client_key),
            "-o",
            f"UserKnownHostsFile={sshd.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            f"{sshd.user}@127.0.0.1",
        ]
    )
    try:
        from appliance.tunnel import wait_port

        assert wait_port(port, time.monotonic() + 20), "ssh -L did not come up"
        db = work / "anchor.sqlite"
        subprocess.run(["sqlite3", str(db), f"CREATE TABLE bench ({SQLITE_COLUMNS})"], check=True)
        env = {**os.environ, "PGPASSWORD": RO_PASSWORD}
        t0 = time.perf_counter()
        subprocess.run(
            f"psql -h 127.0.0.1 -p {port} -U {RO_USER} -d sales -c "
            f"'\\copy (SELECT * FROM bench) TO STDOUT' | "
            f"sqlite3 {db} '.mode tabs' '.import /dev/stdin bench'",
            shell=True,
            check=True,
            env=env,
        )
        return time.perf_counter() - t0
    finally:
        tunnel.terminate()
        tunnel.wait()


def ours(pg: PgCluster, sshd: Sshd, work: Path) -> tuple[float, float]:
    """appliance sync --once through our tunnel; returns (seconds, peak RSS MB)."""
    os.chmod(sshd.client_key, 0o600)
    config = sections(work / "state", pg, password_file(work / "pw"), sshd)
    cfg = write_config(work / "bench.toml", config, [{"name": "public.bench", "cursor": "updated_at"}])
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--once"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kb / 1024


def main(sizes: list[int]) -> None:
    print(f"bench_sync: initial sync through the SSH tunnel into SQLite on {machine()}")
    pg = PgCluster().init().start()
    sshd = Sshd().start()
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        for rows in sizes:
            fill(pg, rows)
            with tempfile.TemporaryDirectory() as tmp:
                work = Path(tmp)
                base = anchor(pg, sshd, work)
                ours_s, rss = ours(pg, sshd, work)
            print(
                f"  {rows:>9,} rows: anchor (psql | sqlite3 via ssh -L) {base:6.2f}s "
                f"{rows / base:>9,.0f} rows/s | appliance {ours_s:6.2f}s "
                f"{rows / ours_s:>9,.0f} rows/s | ratio {base / ours_s:.2f}x (target >= 0.80) "
                f"| peak RSS {rss:.0f} MB (target < 150)"
            )
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000])
