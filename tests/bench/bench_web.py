"""Benchmark: the status page under 50 concurrent clients (wrk), small and 100,000-event logs.

The real server (``appliance.web.server.PageServer``, what ``appliance web`` runs: waitress,
THREADS worker threads, ready pages answered on its I/O thread) on 127.0.0.1, loaded by
wrk with 50 connections. For ``/`` and ``/api/status``, with a small event log and with
100,000 events (half of them in the last 24 hours, the worst case for the history
bars), it prints p50, p99 and requests per second. Anchor, in the
same run: ``/`` rendered on every request (the cache defeated), as BRIEF 9 measured it,
and the floor: the same bytes served by a bare WSGI function on stock waitress (each
request through its thread pool, as the page was before it answered on the I/O thread).
Also the time of one uncached render and of a deep keyset page of the event log, for
both log sizes: page time must not grow with the log's length.

Target (BRIEF 6): p99 under 50 ms; page time independent of the event log's length.
Each figure is the median of 3 runs, the two log sizes interleaved run by run, so the
noise of a shared machine falls on both alike; the load average before and after says
how shared it was. Takes about 50 seconds.

Run: python tests/bench/bench_web.py [SECONDS per wrk run, default 3] [THREADS]
"""

from __future__ import annotations

import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

from waitress import wasyncore
from waitress.server import create_server

from appliance.clock import iso, utcnow
from appliance.config import Config, parse
from appliance.health import status as health
from appliance.health.store import StateStore
from appliance.web.server import THREADS, PageServer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support.machine import machine  # noqa: E402
from support.wrk import wrk as run_wrk  # noqa: E402

CONNECTIONS = 50
BIG_LOG = 100_000
TABLES = ["public.customers", "public.orders", "public.order_items", "public.products"]


def make_config(state_dir: Path) -> Config:
    return parse(
        {
            "appliance": {"state_dir": str(state_dir)},
            "source": {"host": "db", "database": "sales", "user": "ro"},
            "web": {"host": "127.0.0.1"},
            "tables": [{"name": t} for t in TABLES],
        },
        environ={},
    )


def fill(config: Config, events: int) -> None:
    """A lagging appliance with a day of passes and ``events`` log entries.

    Both log sizes hold the same 48 state changes over two days (one per hour, as
    a flapping source would give); the rest are notification events. So the page has
    the same content in both, and only the log's length differs.
    """
    now = utcnow()
    with StateStore(config.state_dir) as store:
        for i, t in enumerate(config.tables):
            store.record_table(
                t.name,
                t.replica_name,
                rows=250_000 * (i + 1),
                synced=10**6,
                last_sync=iso(now - timedelta(seconds=20 + 300 * i)),
            )
        store.put("source", {"tunnel": "up", "database": "up", "last_error": "", "down": False})
        store.put("agent", {"running": True, "heartbeat": iso(now), "interval": 30})
        store.db.execute("BEGIN")
        # Raw inserts: the store's own event() keeps only 10,000, the benchmark wants more.
        store.db.executemany(
            "INSERT INTO events (at, kind, table_name, message) VALUES (?, ?, ?, ?)", _events(events, now)
        )
        store.db.executemany(
            "INSERT INTO runs (started, finished, ok, rows, summary) VALUES (?, ?, ?, ?, ?)",
            (
                (
                    iso(now - timedelta(seconds=30 * i + 2)),
                    iso(now - timedelta(seconds=30 * i)),
                    1,
                    5,
                    "pass ok: 4 tables, 5 rows changed",
                )
                for i in range(2000)
            ),
        )
        store.db.execute("COMMIT")
        health.update(config, store)


def _events(count: int, now) -> list[tuple]:
    """Return ``count`` events over the last 48 hours, oldest first, 48 of them state changes."""
    span, every = 48 * 3600 / count, max(1, count // 48)
    out = []
    for i in range(count):
        at = iso(now - timedelta(seconds=(count - i) * span))
        table = TABLES[i % len(TABLES)]
        if i % every == 0:
            up = (i // every) % 2
            message = (
                f"lagging -> ok: All {len(TABLES)} tables are up to date."
                if up
                else f"ok -> lagging: {table} is 11m behind (more than warn_lag 10m)."
            )
            out.append((at, "state", None, message))
        else:
            out.append((at, "notify", table, f"webhook delivered (attempt {i % 3 + 1})"))
    return out


def wrk(url: str, seconds: int) -> dict:
    """Return wrk's figures for ``url`` at CONNECTIONS connections (support/wrk.py)."""
    result = run_wrk(url, seconds, CONNECTIONS)
    return result


def render_ms(server: PageServer, path: str) -> float:
    """Return the time of one request of ``path`` rendered from scratch."""
    client = server.app.test_client()
    server.app.extensions["appliance"].cache.clear()
    start = time.perf_counter()
    assert client.get(path).status_code == 200
    return (time.perf_counter() - start) * 1000


def deep_page_ms(server: PageServer, config: Config) -> float:
    """Return the time of an event-log page from the middle of the log."""
    with StateStore(config.state_dir, readonly=True) as store:
        middle = store.db.execute("SELECT (min(id) + max(id)) / 2 FROM events").fetchone()[0]
    start = time.perf_counter()
    assert server.app.test_client().get(f"/events?before={middle}").status_code == 200
    return (time.perf_counter() - start) * 1000


@contextmanager
def _floor(server: PageServer, threads: int) -> Iterator[str]:
    """Serve the same bytes as ``/`` from a bare WSGI function on waitress: the floor."""
    with urllib.request.urlopen(server.local_url, timeout=10) as response:
        body = response.read()

    def app(environ, start_response):
        start_response(
            "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
        )
        return [body]

    sockets: dict = {}
    bare = create_server(app, map=sockets, host="127.0.0.1", port=0, threads=threads)
    thread = threading.Thread(target=bare.run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{bare.effective_port}/"
    finally:
        bare.task_dispatcher.shutdown()
        try:
            bare.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
        except OSError:  # the loop already closed its wake-up pipe (seen once): close here
            wasyncore.close_all(sockets)
        thread.join(10)


def measure(servers: dict[int, tuple[Config, PageServer]], seconds: int, rounds: int) -> dict:
    """Return the medians per (log size, measurement), the sizes interleaved.

    The two cores are shared with whatever else runs; alternating the sizes run by run
    spreads that noise over both, and the median of the rounds drops the worst of it.
    """
    runs: dict[tuple[int, str], list] = {}
    small = min(servers)
    with _floor(servers[small][1], THREADS) as floor_url:
        for _ in range(rounds):
            for path in ("/", "/api/status"):
                for events, (_, server) in servers.items():
                    runs.setdefault((events, path), []).append(
                        wrk(server.local_url + path.lstrip("/"), seconds)
                    )
            runs.setdefault((small, "floor"), []).append(wrk(floor_url, seconds))
    for _ in range(15):
        for events, (config, server) in servers.items():
            for name, ms in (
                ("render /", render_ms(server, "/")),
                ("render /api/status", render_ms(server, "/api/status")),
                ("events page", deep_page_ms(server, config)),
            ):
                runs.setdefault((events, name), []).append(ms)
    server = servers[small][1]
    server.app.extensions["appliance"].cache.period = 1e-9  # render every request: the anchor
    runs[(small, "anchor /")] = [wrk(server.local_url, seconds)]
    out: dict = {}
    for (events, name), values in runs.items():
        if isinstance(values[0], dict):
            out[(events, name)] = {
                k: statistics.median(v[k] for v in values) for k in ("p50", "p99", "rps", "bad")
            }
        else:
            out[(events, name)] = statistics.median(values)
    return out


def main(seconds: int, threads: int, rounds: int = 3) -> None:
    # 50 clients on THREADS threads queue by design; waitress warns about every queue, and
    # about the requests still queued when a run's server is closed.
    logging.getLogger("waitress").setLevel(logging.ERROR)
    if not shutil.which("wrk"):
        sys.exit("bench_web needs wrk: apt-get install wrk (scripts/bench installs it as root)")
    print(
        f"bench_web: status page, {CONNECTIONS} connections (wrk), waitress {threads} "
        f"threads (ready pages on its I/O thread), median of {rounds} runs of {seconds}s, "
        f"on {machine()}; load average before: {os.getloadavg()[0]:.1f}"
    )
    sizes = (100, BIG_LOG)
    with tempfile.TemporaryDirectory(prefix="bench-web-") as tmp:
        servers = {}
        try:
            for events in sizes:
                config = make_config(Path(tmp) / str(events))
                fill(config, events)
                servers[events] = (config, PageServer(config, "127.0.0.1", 0, threads).start())
                wrk(servers[events][1].local_url, 1)  # warm up: imports, first render
            r = measure(servers, seconds, rounds)
        finally:
            for _, server in servers.values():
                server.close()
    labels = {"anchor /": "/ (rendered per request)", "floor": "bare waitress, same bytes"}
    for events in sizes:
        print(f"  event log of {events:>7,} entries:")
        for name in ("/", "/api/status", "anchor /", "floor"):
            if (events, name) not in r:
                continue
            f = r[(events, name)]
            label = labels.get(name, name)
            bad = f", {f['bad']:.0f} non-2xx" if f["bad"] else ""
            print(
                f"    {label:<26} p50 {f['p50']:6.2f} ms  p99 {f['p99']:6.2f} ms  {f['rps']:7.0f} req/s{bad}"
            )
        print(
            f"    one uncached render: / {r[(events, 'render /')]:.1f} ms, /api/status "
            f"{r[(events, 'render /api/status')]:.1f} ms; an event-log page mid-log "
            f"{r[(events, 'events page')]:.1f} ms"
        )
    worst = max(r[(e, n)]["p99"] for e in sizes for n in ("/", "/api/status"))
    print(
        f"  p99 worst {worst:.1f} ms (target < 50 ms): {'ok' if worst < 50 else 'MISSED'} "
        f"(load average after: {os.getloadavg()[0]:.1f})"
    )
    small, big = sizes

    def ratio(name: str, key: str | None = None) -> float:
        a, b = r[(small, name)], r[(big, name)]
        return (b[key] / a[key]) if key else b / a

    print(
        f"  {big:,} vs {small} events: / p99 x{ratio('/', 'p99'):.2f}, rps "
        f"x{ratio('/', 'rps'):.2f}; uncached render x{ratio('render /'):.2f}; event page "
        f"x{ratio('events page'):.2f}"
    )
    print(
        f"  cached vs rendered per request (anchor): / rps "
        f"x{r[(small, '/')]['rps'] / r[(small, 'anchor /')]['rps']:.0f}, p99 "
        f"{r[(small, 'anchor /')]['p99']:.0f} -> {r[(small, '/')]['p99']:.1f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else THREADS)
