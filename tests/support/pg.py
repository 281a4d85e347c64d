"""A throwaway PostgreSQL cluster: initdb + pg_ctl in a temp dir, scram auth, random port.

As root it runs as an unprivileged user (initdb refuses root). The machine's own
PostgreSQL, where present, uses trust auth, so tests of passwords must use this.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER_PASSWORD = "super-secret-pw"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise RuntimeError(f"{name} not found: install the postgresql package (scripts/test does)")
    return path


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "nobody"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    raise RuntimeError("no unprivileged user to run PostgreSQL as")


class PgCluster:
    """One PostgreSQL server on 127.0.0.1:<port> with scram-sha-256 authentication."""

    def __init__(self, base: str | None = None) -> None:
        self.dir = Path(base or tempfile.mkdtemp(prefix="appliance-pg-"))
        os.chmod(self.dir, 0o755)
        self.data = self.dir / "data"
        self.port = free_port()
        self.as_user = _run_as()

    def _own(self, path: Path) -> None:
        if self.as_user:
            shutil.chown(path, self.as_user[2], None)

    def init(self) -> PgCluster:
        pwfile = self.dir / "pw"
        pwfile.write_text(SUPERUSER_PASSWORD)
        self._own(self.dir)
        self._own(pwfile)
        subprocess.run(
            [
                *self.as_user,
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ],
            check=True,
            capture_output=True,
        )
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(
                f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.dir}'\nfsync = off\n"
                f"synchronous_commit = off\nfull_page_writes = off\n"
                f"max_connections = 50\nshared_buffers = 128MB\n"
            )
        return self

    def start(self) -> PgCluster:
        subprocess.run(
            [
                *self.as_user,
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.dir / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [*self.as_user, pg_bin("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"],
            capture_output=True,
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, user: str = "postgres", password: str = SUPERUSER_PASSWORD, db: str = "postgres") -> str:
        return f"postgresql+psycopg2://{user}:{password}@127.0.0.1:{self.port}/{db}"

    def connect(self, db: str = "postgres", user: str = "postgres", password: str = SUPERUSER_PASSWORD):
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", port=self.port, dbname=db, user=user, password=password)
        conn.autocommit = True
        return conn

    def sql(self, statement: str, params=None, db: str = "postgres") -> list[tuple]:
        conn = self.connect(db)
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def add_sales(self, user: str, password: str) -> PgCluster:
        """Create the `sales` database and a read-only login role (as a DBA would grant it)."""
        self.sql("CREATE DATABASE sales")
        self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"GRANT pg_read_all_data TO {user}")
        return self

    def wait_down(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.05)
        raise TimeoutError("PostgreSQL did not stop")
