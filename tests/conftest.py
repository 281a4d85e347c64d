"""Shared fixtures: a real PostgreSQL cluster and a real sshd, started once per session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from support.pg import PgCluster  # noqa: E402
from support.sshd import Sshd  # noqa: E402
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


# -- nothing passes quietly when it could not run ------------------------------------------
# scripts/test installs every tool the tests need, so under it (APPLIANCE_STRICT_SKIPS=1) a
# skip is a missing install step, not a pass: it fails the run. Only the opt-in tests that
# need a real Pi, a person at the button or a network chroot may skip, and they say which
# variable turns them on.
OPT_IN = ("APPLIANCE_HARDWARE", "APPLIANCE_CHROOT_TEST")


def strict_skip_failure(report) -> str | None:
    """Return why a skipped test report must count as a failure, or None when it may skip."""
    if not report.skipped or getattr(report, "wasxfail", None) is not None:
        return None
    reason = str(report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr)
    if any(name in reason for name in OPT_IN):
        return None
    return f"skipped under scripts/test, where nothing may skip: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("APPLIANCE_STRICT_SKIPS") == "1":
        why = strict_skip_failure(report)
        if why:
            report.outcome = "failed"
            report.longrepr = why
