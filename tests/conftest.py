"""Shared fixtures: a real PostgreSQL cluster and a real sshd, started once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.tomlconf import RO_PASSWORD, RO_USER, write_config  # noqa: E402


@pytest.fixture(scope="session")
def pg():
    """A throwaway cluster with database `sales` and a read-only role."""
    cluster = PgCluster().init().start()
    cluster.sql("CREATE DATABASE sales")
    cluster.sql(f"CREATE ROLE {RO_USER} LOGIN PASSWORD '{RO_PASSWORD}'")
    cluster.sql(f"GRANT pg_read_all_data TO {RO_USER}")
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="session")
def sshd():
    server = Sshd().start()
    yield server
    server.destroy()


@pytest.fixture
def sales(pg):
    """The `sales` database, emptied of the previous test's tables."""
    pg.sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public; "
           "DROP SCHEMA IF EXISTS shop CASCADE", db="sales")
    return pg


@pytest.fixture
def make_config(tmp_path, pg, sshd):
    """Return a function writing an appliance.toml for the test cluster (through the tunnel)."""

    def make(tables: list[dict], *, tunnel: bool = True, sync: dict | None = None,
             source: dict | None = None, ssh: dict | None = None,
             name: str = "appliance.toml") -> Path:
        pwfile = tmp_path / "source.password"
        pwfile.write_text(RO_PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        os.chmod(sshd.client_key, 0o600)
        sections = {
            "appliance": {"state_dir": str(tmp_path / "state")},
            "ssh": ({"host": "127.0.0.1", "port": sshd.port, "user": sshd.user,
                     "key_file": str(sshd.client_key), "known_hosts": str(sshd.known_hosts),
                     "connect_timeout": "5s", **(ssh or {})} if tunnel else None),
            "source": {"host": "127.0.0.1", "port": pg.port, "database": "sales",
                       "user": RO_USER, "password_file": str(pwfile), **(source or {})},
            "sync": {"interval": "1s", "batch_size": 1000, **(sync or {})},
        }
        return write_config(tmp_path / name, sections, tables)

    return make
