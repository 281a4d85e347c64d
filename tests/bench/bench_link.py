"""Benchmark: the field link - the sync over a slow, distant uplink (issue 15).

A relay on loopback (tests/support/relay.py: bandwidth per direction, one-way delay) sits
in front of the real sshd; everything below goes through it, so both sides pay the same
link. Machine and link settings are printed with the figures.

1. Initial copy of the bench_sync table: the appliance (``appliance sync --once``) against
   the raw pipe ``psql \\copy ... | sqlite3 .import`` through ``ssh -L`` and through
   ``ssh -C -L``, in the same run, at 20 Mbit/s with 50 ms round trips and at 10 Mbit/s
   with 100 ms. Prints times, bytes on the wire per row and the ratios. The appliance is
   shown twice: the process from start to exit (imports, tunnel, login included) and the
   pass as its summary line times it (without opening the link; the pipe's ssh -L is also
   up before its clock starts). Targets: >= 3x the ssh -L pipe, >= 1.0x the ssh -C -L one.
   The CPU seconds of every party (client side, PostgreSQL, sshd, the relay) show whether
   a run was bound by the link or by the machine's cores, which here they all share.
2. Incremental passes over 10 tables at 50 ms round trips: idle, and with 100 changed
   rows. Time and statements. Targets: idle < 1.0 s, 100 changes < 1.5 s, idle <= 12
   statements.
3. Hard-delete reconciliation of the table with 10 and 1000 deletes over the 20 Mbit/s,
   50 ms link, against re-copying every key over it. Target: >= 5x faster with 10 deletes.
   Both kinds: by keys (what runs every ``reconcile_every``) and by whole rows (every
   ``verify_every``).

Run: python tests/bench/bench_link.py [ROWS]   (default 1000000)
"""

from __future__ import annotations

import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sync import SQLITE_COLUMNS, CpuMeter, fill  # noqa: E402
from support.harness import Harness  # noqa: E402
from support.machine import machine  # noqa: E402
from support.pg import PgCluster  # noqa: E402
from support.rawpipe import copy_through, ssh_forward  # noqa: E402
from support.relay import Relay  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import RO_PASSWORD, RO_USER, password_file, sections, write_config  # noqa: E402

from appliance.sync.reconcile import KINDS  # noqa: E402

CORES = os.cpu_count() or 1
LINKS = ((20, 0.025), (10, 0.05))  # Mbit/s per direction, one-way delay (s)
REPEAT = 5  # reconciliations by keys (and key re-copies) behind the headline's medians
WHEN = {"keys": "every reconcile_every", "rows": "every verify_every"}
TABLES, TABLE_ROWS, CHANGES = 10, 20_000, 100


def link_text(mbit: float, delay: float) -> str:
    return f"{mbit:g} Mbit/s each way, {delay * 2000:.0f} ms round trip"


def pinned(sshd: Sshd, relay: Relay, work: Path) -> Path:
    """Return a known_hosts file pinning sshd's key at the relay's port."""
    kind, blob = sshd.host_pub()
    path = work / f"known_hosts_{relay.port}"
    path.write_text(f"[127.0.0.1]:{relay.port} {kind} {blob}\n")
    return path


def config(pg: PgCluster, sshd: Sshd, work: Path, name: str, tables: list[dict], relay=None) -> Path:
    """Write a config reaching the source through sshd (through the relay when given)."""
    os.chmod(sshd.client_key, 0o600)
    conf = sections(work / "state", pg, password_file(work / "pw"), sshd)
    if relay is not None:
        conf["ssh"].update(port=relay.port, known_hosts=str(pinned(sshd, relay, work)))
    return write_config(work / name, conf, tables)


def pipe(pg: PgCluster, sshd: Sshd, relay: Relay, work: Path, compress: bool) -> float:
    """psql \\copy | sqlite3 .import through ssh [-C] -L over the relay; its seconds."""
    options = ["-C"] if compress else ["-o", "Compression=no"]
    with ssh_forward(sshd, pg.port, relay.port, pinned(sshd, relay, work), options) as port:
        return copy_through(port, work / f"pipe{port}.sqlite", SQLITE_COLUMNS)


def ours(pg: PgCluster, sshd: Sshd, relay: Relay, work: Path) -> tuple[float, float, str]:
    """appliance sync --once over the relay: (process seconds, pass seconds, summary)."""
    cfg = config(pg, sshd, work, "copy.toml", [{"name": "public.bench", "cursor": "updated_at"}], relay)
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--once"],
        check=True,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - t0
    line = [x for x in out.stderr.splitlines() if "pass ok" in x][-1]
    summary = line.split("INFO appliance.sync.agent: ", 1)[-1]
    return seconds, float(re.findall(r"\(([\d.]+)s\)$", line)[0]), summary


def copy(pg: PgCluster, sshd: Sshd, rows: int) -> None:
    print(f"  1. initial copy of {rows:,} rows (bench_sync's table):")
    for mbit, delay in LINKS:
        figures, cpus = {}, {}
        for label in ("ssh -L", "ssh -C -L", "appliance"):
            with tempfile.TemporaryDirectory() as tmp, Relay(sshd.port, mbit=mbit, delay=delay) as relay:
                work = Path(tmp)
                meter, mine = CpuMeter(pg, sshd).start(), resource.getrusage(resource.RUSAGE_SELF)
                if label == "appliance":
                    process, seconds, summary = ours(pg, sshd, relay, work)
                else:
                    seconds = pipe(pg, sshd, relay, work, compress=label == "ssh -C -L")
                figures[label] = (seconds, relay.bytes_down / rows)
                cpus[label] = meter.stop()
                after = resource.getrusage(resource.RUSAGE_SELF)  # the relay runs in this process
                cpus[label]["relay"] = after.ru_utime + after.ru_stime - mine.ru_utime - mine.ru_stime
        plain, compressed, (app, _) = (
            figures["ssh -L"][0],
            figures["ssh -C -L"][0],
            figures["appliance"],
        )
        print(f"    {link_text(mbit, delay)}:")
        for label, (seconds, per_row) in figures.items():
            cpu = cpus[label]
            print(
                f"      {label:<10} {seconds:7.2f}s {rows / seconds:>9,.0f} rows/s "
                f"{per_row:6.1f} bytes/row down; CPU-s: client {cpu['client']:.1f}, postgres "
                f"{cpu['postgres']:.1f}, sshd {cpu['sshd']:.1f}, relay {cpu['relay']:.1f}, total "
                f"{sum(cpu.values()):.1f} ({sum(cpu.values()) / CORES:.1f} s on {CORES} cores)"
            )
        print(
            f"      appliance process (start to exit, tunnel and login included) {process:.2f}s; "
            f"pass: {summary}"
        )
        print(
            f"      ratio vs ssh -L {plain / app:.2f}x (target >= 3), vs ssh -C -L {compressed / app:.2f}x "
            f"(target >= 1.0); process: {plain / process:.2f}x, {compressed / process:.2f}x; "
            f"peak RSS of the agent {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB"
        )


def _tables(pg: PgCluster) -> list[dict]:
    for i in range(TABLES):
        pg.sql(f"DROP TABLE IF EXISTS inc{i}", db="sales")
        pg.sql(f"CREATE TABLE inc{i} (LIKE bench INCLUDING ALL)", db="sales")
        # bulk rows stamped well before the lookback window (BRIEF 9, Benchmarks)
        pg.sql(f"INSERT INTO inc{i} SELECT * FROM bench WHERE id <= {TABLE_ROWS}", db="sales")
        pg.sql(f"VACUUM ANALYZE inc{i}", db="sales")
    return [{"name": f"public.inc{i}", "cursor": "updated_at"} for i in range(TABLES)]


def timed_pass(h: Harness):
    from appliance.sync.agent import run_once

    t0 = time.perf_counter()
    result = run_once(h.config, h.link, h.replica, h.store)
    assert result.ok, result.summary()
    return time.perf_counter() - t0 - result.link_seconds, result


def incremental(pg: PgCluster, sshd: Sshd) -> None:
    mbit, delay = LINKS[0]
    print(f"  2. incremental passes over {TABLES} tables of {TABLE_ROWS:,} rows, {link_text(mbit, delay)}:")
    tables = _tables(pg)
    rng = random.Random(15)
    with tempfile.TemporaryDirectory() as tmp, Relay(sshd.port, mbit=mbit, delay=delay) as relay:
        work = Path(tmp)
        with Harness(config(pg, sshd, work, "near.toml", tables)) as h:
            h.sync()  # the initial copies, without the relay: not what is measured here
        with Harness(config(pg, sshd, work, "far.toml", tables, relay)) as h:
            timed_pass(h)  # opens the link; reads each window once
            idle, r = timed_pass(h)
            print(f"    idle pass        {idle:5.2f}s, {r.statements:2d} statements (target < 1.0 s, <= 12)")
            for n in range(CHANGES):
                ident = rng.randint(1, TABLE_ROWS)
                pg.sql(
                    f"UPDATE inc{n % TABLES} SET qty = qty + 1, updated_at = now() WHERE id = {ident}",
                    db="sales",
                )
            changed, r = timed_pass(h)
            print(
                f"    {CHANGES} changed rows  {changed:5.2f}s, {r.statements:2d} statements, "
                f"{sum(t.written for t in r.tables)} rows written (target < 1.5 s)"
            )


def reconcile(pg: PgCluster, sshd: Sshd, rows: int) -> None:
    mbit, delay = LINKS[0]
    print(f"  3. hard-delete reconciliation of {rows:,} rows, {link_text(mbit, delay)}:")
    tables = [{"name": "public.bench", "cursor": "updated_at"}]
    rng = random.Random(rows)
    left = list(range(1, rows + 1))
    ten: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, Relay(sshd.port, mbit=mbit, delay=delay) as relay:
        work = Path(tmp)
        with Harness(config(pg, sshd, work, "near.toml", tables)) as h:
            h.sync()
            h.reconcile()  # hashes the replica's rows once (cached): not what is measured
            for kind in KINDS:
                rng.shuffle(left)
                ids, left = left[:10], left[10:]
                pg.sql(f"DELETE FROM bench WHERE id IN ({', '.join(map(str, ids))})", db="sales")
                r = h.reconcile(kind=kind)
                print(
                    f"      by {kind}, 10 deleted, no relay (loopback): {r.seconds:6.2f}s, "
                    f"{r.queries} statements"
                )
        with Harness(config(pg, sshd, work, "far.toml", tables, relay)) as h:
            h.link.source()

            def deleted(n: int, kind: str):
                rng.shuffle(left)
                ids = [left.pop() for _ in range(n)]
                pg.sql(f"DELETE FROM bench WHERE id IN ({', '.join(map(str, ids))})", db="sales")
                r = h.reconcile(kind=kind)
                assert r.removed == n and r.kind == kind, r.summary()
                return r

            # The headline: 10 deletes by keys, against the key re-copy, interleaved run by
            # run (each is a fraction of a second: one run is at the mercy of the shared cores).
            runs = []
            for _ in range(REPEAT):
                r = deleted(10, "keys")
                runs.append((r.seconds, key_copy(h)[0], r))
            seconds, anchors = sorted(x[0] for x in runs), sorted(x[1] for x in runs)
            mid, anchor, r = statistics.median(seconds), statistics.median(anchors), runs[0][2]
            ten["keys"] = mid
            print(
                f"    by keys ({WHEN['keys']}),   10 deleted: median {mid:.2f}s of {REPEAT} "
                f"({seconds[0]:.2f}-{seconds[-1]:.2f}), {r.queries} statements, "
                f"{r.transferred:,} rows transferred"
            )
            for kind, n in (("keys", 1000), ("rows", 10), ("rows", 1000)):
                r = deleted(n, kind)
                print(
                    f"    by {kind} ({WHEN[kind]}), {n:>4} deleted: {r.seconds:6.2f}s, "
                    f"{r.queries} statements, {r.transferred:,} rows transferred"
                )
                if n == 10:
                    ten[kind] = r.seconds
            keys = len(h.link.source().execute("SELECT id FROM bench"))
            ratios = [a / s for s, a, _ in runs]
            print(
                f"    anchor: re-copy of the {keys:,} keys, median {anchor:.2f}s ({anchors[0]:.2f}-"
                f"{anchors[-1]:.2f}); with 10 deletes, by keys {anchor / ten['keys']:.2f}x (target >= 5; "
                f"run by run {min(ratios):.2f}-{max(ratios):.2f}x), by rows {anchor / ten['rows']:.2f}x"
            )
        plain = config(pg, sshd, work, "plain.toml", tables, relay)
        plain.write_text(plain.read_text().replace("[ssh]\n", "[ssh]\ncompression = false\n"))
        with Harness(plain) as h:
            h.link.source()
            anchor, keys = key_copy(h)
            print(
                f"    the same re-copy with ssh.compression = false: {anchor:.2f}s "
                f"(by keys {anchor / ten['keys']:.2f}x, by rows {anchor / ten['rows']:.2f}x)"
            )


def key_copy(h: Harness) -> tuple[float, int]:
    """Copy every key over the link (what finding deletes costs without reconciliation)."""
    t0 = time.perf_counter()
    keys = {row[0] for row in h.link.source().execute("SELECT id FROM bench")}
    return time.perf_counter() - t0, len(keys)


def main(rows: int) -> None:
    print(f"bench_link: the sync over a slow, distant link (relay in front of sshd) on {machine()}")
    pg = PgCluster().init().start()
    sshd = Sshd().start()
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        fill(pg, rows)
        which = os.environ.get("BENCH_LINK_PARTS", "copy,incremental,reconcile").split(",")
        if "copy" in which:
            copy(pg, sshd, rows)
        if "incremental" in which:
            incremental(pg, sshd)
        if "reconcile" in which:
            reconcile(pg, sshd, rows)
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
