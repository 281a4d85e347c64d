"""Shared fixtures: a real PostgreSQL cluster and a real sshd, started once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
from support.strict import strict_skip_failure  # noqa: E402
from support.tomlconf import (  # noqa: E402
    RO_PASSWORD,
    RO_USER,
    password_file,
    sections,
    write_config,
)


@pytest.fixture(scope="session")
def pg():
    """A throwaway cluster with database `sales` and a read-only role."""
    cluster = PgCluster().init().start().add_sales(RO_USER, RO_PASSWORD)
    yield cluster
    cluster.destroy()


@pytest.fixture
def own_pg():
    """A cluster of the test's own (it may be stopped) with table public.t holding one row."""
    cluster = PgCluster().init().start().add_sales(RO_USER, RO_PASSWORD)
    cluster.sql(
        "CREATE TABLE t (id int PRIMARY KEY, v text, updated_at timestamptz NOT NULL "
        "DEFAULT now()); INSERT INTO t VALUES (1, 'a')",
        db="sales",
    )
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
    pg.sql(
        "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public; DROP SCHEMA IF EXISTS shop CASCADE",
        db="sales",
    )
    return pg


@pytest.fixture
def make_config(tmp_path, pg, sshd):
    """Return a function writing an appliance.toml for the test cluster (through the tunnel)."""

    def make(
        tables: list[dict],
        *,
        tunnel: bool = True,
        sync: dict | None = None,
        source: dict | None = None,
        ssh: dict | None = None,
        name: str = "appliance.toml",
    ) -> Path:
        pwfile = password_file(tmp_path / "source.password")
        os.chmod(sshd.client_key, 0o600)
        config = sections(
            tmp_path / "state",
            pg,
            pwfile,
            sshd if tunnel else None,
            ssh={"connect_timeout": "5s", **(ssh or {})} if tunnel else None,
            source=source or {},
            sync={"interval": "1s", "batch_size": 1000, **(sync or {})},
        )
        return write_config(tmp_path / name, config, tables)

    return make


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MB tmpfs mounted for the test (as root, as scripts/test runs): a disk that fills."""
    mount = tmp_path / "card"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root: run scripts/test as root, as CI does")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], check=True)
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


# -- nothing passes quietly when it could not run (see support/strict.py) --------------------
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("APPLIANCE_STRICT_SKIPS") == "1":
        why = strict_skip_failure(report)
        if why:
            report.outcome = "failed"
            report.longrepr = why
