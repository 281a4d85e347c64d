"""The benchmarks' anchor: psql \\copy | sqlite3 .import through OpenSSH's own ssh -L.

bench_sync runs it on loopback, bench_link over the slow-link relay (and with ssh -C).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support.pg import free_port
from support.ports import wait_port
from support.tomlconf import RO_PASSWORD, RO_USER


@contextmanager
def ssh_forward(sshd, db_port: int, ssh_port: int, known_hosts: Path, options: list[str]) -> Iterator[int]:
    """Run ``ssh -N -L`` to the database through ``ssh_port``; yield the local port."""
    port = free_port()
    tunnel = subprocess.Popen(
        ["ssh", *options, "-N", "-L", f"127.0.0.1:{port}:127.0.0.1:{db_port}", "-p", str(ssh_port)]
        + ["-i", str(sshd.client_key), "-o", f"UserKnownHostsFile={known_hosts}"]
        + ["-o", "StrictHostKeyChecking=yes", "-o", "ExitOnForwardFailure=yes", f"{sshd.user}@127.0.0.1"]
    )
    try:
        assert wait_port(port, time.monotonic() + 30), "ssh -L did not come up"
        yield port
    finally:
        tunnel.terminate()
        tunnel.wait()


def copy_through(port: int, db: Path, columns: str) -> float:
    """Copy table bench through the forwarded ``port`` into a new SQLite ``db``; its seconds."""
    subprocess.run(["sqlite3", str(db), f"CREATE TABLE bench ({columns})"], check=True)
    t0 = time.perf_counter()
    subprocess.run(
        f"psql -h 127.0.0.1 -p {port} -U {RO_USER} -d sales -c "
        f"'\\copy (SELECT * FROM bench) TO STDOUT' | "
        f"sqlite3 {db} '.mode tabs' '.import /dev/stdin bench'",
        shell=True,
        check=True,
        env={**os.environ, "PGPASSWORD": RO_PASSWORD},
    )
    return time.perf_counter() - t0
