"""Benchmark: time from cutting the tunnel (killing the bastion's sshd) to `outage` readable.

Runs the real agent with production defaults (interval 30s, probe every 5s) through a real
sshd; median of several cuts. Target (BRIEF 6): under 15 s.

Run: python tests/bench/bench_outage.py [RUNS]   (default 5)
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.machine import machine  # noqa: E402
from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import (  # noqa: E402
    RO_PASSWORD,
    RO_USER,
    password_file,
    sections,
    write_config,
)

from appliance.config import load  # noqa: E402
from appliance.health.status import current_status  # noqa: E402
from appliance.health.store import StateStore  # noqa: E402
from appliance.sync.agent import Agent  # noqa: E402
from appliance.sync.link import SourceLink  # noqa: E402
from appliance.sync.replica import Replica  # noqa: E402


def wait_for(config, state: str, timeout: float = 120) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if current_status(config)["state"] == state:
            return time.monotonic() - t0
        time.sleep(0.05)
    raise TimeoutError(state)


def main(runs: int) -> None:
    import logging

    logging.getLogger("appliance").setLevel(logging.ERROR)  # the probe's warnings are expected
    print(f"bench_outage: tunnel cut to outage readable, on {machine()}")
    pg, sshd = PgCluster().init().start(), Sshd().start()
    work = Path(tempfile.mkdtemp())
    try:
        pg.add_sales(RO_USER, RO_PASSWORD)
        pg.sql(
            "CREATE TABLE t (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
            "INSERT INTO t VALUES (1)",
            db="sales",
        )
        sshd.client_key.chmod(0o600)
        config = sections(work / "state", pg, password_file(work / "pw"), sshd)
        cfg = load(write_config(work / "a.toml", config, [{"name": "public.t", "cursor": "updated_at"}]))
        store, replica, link = StateStore(cfg.state_dir), Replica(cfg.replica_url), SourceLink(cfg)
        agent = Agent(cfg, link, replica, store)
        thread = threading.Thread(target=agent.run, daemon=True)
        thread.start()
        times = []
        for _ in range(runs):
            wait_for(cfg, "ok")
            time.sleep(1 + 4 * (len(times) / max(1, runs)))  # cut at different probe phases
            sshd.stop()
            times.append(wait_for(cfg, "outage"))
            sshd.start()
        agent.stopping.set()
        thread.join(60)
        link.close()
        print(
            f"  {runs} cuts: median {statistics.median(times):.1f}s, max {max(times):.1f}s "
            f"(target < 15s; ratio to target {statistics.median(times) / 15:.2f}) "
            f"[{', '.join(f'{t:.1f}' for t in times)}]"
        )
    finally:
        sshd.destroy()
        pg.destroy()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
