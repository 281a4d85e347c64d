"""Benchmark: initial sync of N rows (8 mixed columns) through the real SSH tunnel into SQLite.

Anchor, in the same run: `psql \\copy (SELECT ...) TO STDOUT | sqlite3 .import` through an
OpenSSH tunnel (ssh -L). Prints both times, the throughput ratio and our peak RSS, and
where the CPU went on each side (the machine's cores are shared by every process of
the pipeline, so on 2 cores the total CPU bounds the time). Also the round trip of one
2,000-row page through our tunnel and direct.
Target (BRIEF 6): ratio >= 0.8, peak RSS < 150 MB and flat in N.
The anchor's ssh -L is set up before its clock starts; ours is timed as a user runs it:
`appliance sync --once`, from process start (imports, tunnel set-up) to exit.

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

from support.machine import cpu_seconds, machine  # noqa: E402
from support.pg import PgCluster  # noqa: E402
from support.rawpipe import copy_through, ssh_forward  # noqa: E402
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
    # The cursor is indexed with the key, as on any table synced incrementally: the
    # high-water mark and every incremental pass read (cursor, key) in order.
    pg.sql("CREATE INDEX bench_updated_at ON bench (updated_at, id)", db="sales")
    # The test cluster commits asynchronously (synchronous_commit = off): until a checkpoint
    # flushes the load's commit, VACUUM cannot mark pages all-visible, and every index-only
    # scan would read the table too. A production table, and a hot standby's copy of it,
    # has them marked by autovacuum long before anyone reconciles it.
    pg.sql("CHECKPOINT", db="sales")
    pg.sql("VACUUM ANALYZE bench", db="sales")


class CpuMeter:
    """CPU seconds used, during a run, by our children, the PostgreSQL server and sshd.

    Servers count a backend's or session's CPU once they have reaped it, so ``stop``
    waits (with a deadline) until their totals stop moving.
    """

    def __init__(self, pg: PgCluster, sshd: Sshd) -> None:
        self.pids = {
            "postgres": int((pg.data / "postmaster.pid").read_text().split()[0]),
            "sshd": sshd.proc.pid,
        }

    def _now(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "client": usage.ru_utime + usage.ru_stime,
            **{name: cpu_seconds(pid) for name, pid in self.pids.items()},
        }

    def start(self) -> CpuMeter:
        self.before = self._now()
        return self

    def stop(self) -> dict[str, float]:
        last, deadline = self._now(), time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.3)
            now = self._now()
            if now == last:
                break
            last = now
        return {k: last[k] - self.before[k] for k in last}


def anchor(pg: PgCluster, sshd: Sshd, work: Path) -> tuple[float, dict]:
    """psql \\copy | sqlite3 .import through an OpenSSH tunnel (ssh -L); (seconds, CPU).

    The CPU figures include ssh's, from its start to its end, as ours include our tunnel's.
    """
    meter = CpuMeter(pg, sshd).start()
    with ssh_forward(sshd, pg.port, sshd.port, sshd.known_hosts, []) as port:
        seconds = copy_through(port, work / "anchor.sqlite", SQLITE_COLUMNS)
    return seconds, meter.stop()


def ours(pg: PgCluster, sshd: Sshd, work: Path) -> tuple[float, float, dict]:
    """appliance sync --once through our tunnel; returns (seconds, peak RSS MB, CPU)."""
    os.chmod(sshd.client_key, 0o600)
    config = sections(work / "state", pg, password_file(work / "pw"), sshd)
    # Loopback against a plain ssh -L: compression (on by default, for the field link)
    # would only add CPU here. bench_link measures it where it counts.
    config["ssh"]["compression"] = False
    cfg = write_config(work / "bench.toml", config, [{"name": "public.bench", "cursor": "updated_at"}])
    meter = CpuMeter(pg, sshd).start()
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--once"],
        check=True,
        stderr=subprocess.DEVNULL,
    )
    seconds = time.perf_counter() - t0
    cpu = meter.stop()
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, peak_kb / 1024, cpu


def page_round_trip(pg: PgCluster, sshd: Sshd) -> tuple[float, float]:
    """Median ms of one 2,000-row page through our tunnel and direct."""
    import psycopg2

    from appliance.sync.tunnel import Tunnel, TunnelSpec

    spec = TunnelSpec(
        "127.0.0.1",
        sshd.port,
        sshd.user,
        str(sshd.client_key),
        None,
        str(sshd.known_hosts),
        10,
        10,
        "127.0.0.1",
        pg.port,
    )
    out = []
    with Tunnel(spec) as tunnel:
        for port in (tunnel.local_port, pg.port):
            conn = psycopg2.connect(
                host="127.0.0.1", port=port, dbname="sales", user=RO_USER, password=RO_PASSWORD
            )
            times = []
            with conn.cursor() as cur:
                for i in range(31):
                    t0 = time.perf_counter()
                    cur.execute(
                        "SELECT id, status FROM bench WHERE id > %s ORDER BY id LIMIT 2000", (i * 2000,)
                    )
                    cur.fetchall()
                    times.append(time.perf_counter() - t0)
            conn.close()
            out.append(sorted(times)[15] * 1000)
    return out[0], out[1]


def cpu_text(cpu: dict) -> str:
    return (
        f"client {cpu['client']:.1f}, PostgreSQL {cpu['postgres']:.1f}, sshd {cpu['sshd']:.1f}"
        f" = {sum(cpu.values()):.1f} s"
    )


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
                base, base_cpu = anchor(pg, sshd, work)
                ours_s, rss, ours_cpu = ours(pg, sshd, work)
            print(
                f"  {rows:>9,} rows: anchor (psql | sqlite3 via ssh -L) {base:6.2f}s "
                f"{rows / base:>9,.0f} rows/s | appliance {ours_s:6.2f}s "
                f"{rows / ours_s:>9,.0f} rows/s | ratio {base / ours_s:.2f}x (target >= 0.80) "
                f"| peak RSS {rss:.0f} MB (target < 150)"
            )
            print(
                f"      CPU: anchor {cpu_text(base_cpu)} (client: psql, sqlite3, ssh); "
                f"appliance {cpu_text(ours_cpu)} (client: the agent and its tunnel process)"
            )
        tunnel_ms, direct_ms = page_round_trip(pg, sshd)
        print(f"  one 2,000-row page: {tunnel_ms:.1f} ms through our tunnel, {direct_ms:.1f} ms direct")
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1_000_000])
