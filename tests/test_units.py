"""The systemd units pass ``systemd-analyze verify`` and score well in its security review."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
UNITS = sorted(p.name for p in (REPO / "systemd").glob("*.service"))
MAX_EXPOSURE = {
    "appliance-sync.service": 3.0,
    "appliance-web.service": 3.0,
    "appliance-indicator.service": 4.0,
}
EXECUTABLES = ("/opt/appliance/venv/bin/appliance", "/opt/appliance/src/scripts/install-on-pi")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze missing (scripts/test installs systemd)"
)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    """A tree where the units are installed and their ExecStart= programs exist (verify checks)."""
    root = tmp_path_factory.mktemp("root")
    system = next(
        p
        for p in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system"))
        if (p / "sysinit.target").exists()
    )
    shutil.copytree(system, root / "usr/lib/systemd/system", symlinks=True)
    for exe in EXECUTABLES:
        path = root / exe.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("#!/bin/sh\n")
        path.chmod(0o755)
    units = root / "etc/systemd/system"
    units.mkdir(parents=True)
    for unit in UNITS:
        shutil.copy(REPO / "systemd" / unit, units / unit)
    return root


def test_units_all_there():
    assert set(MAX_EXPOSURE) | {"appliance-firstboot.service"} == set(UNITS)


@pytest.mark.parametrize("unit", UNITS)
def test_units_verify_clean(root, unit):
    out = subprocess.run(
        ["systemd-analyze", "verify", f"--root={root}", unit], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout + out.stderr == "", out.stdout + out.stderr


def test_units_verify_notices_a_missing_program(root, tmp_path):
    """The check above is real: without the venv, verify fails on ExecStart=."""
    bare = tmp_path / "bare"
    shutil.copytree(root, bare, symlinks=True, ignore=shutil.ignore_patterns("opt"))
    out = subprocess.run(
        ["systemd-analyze", "verify", f"--root={bare}", "appliance-sync.service"],
        capture_output=True,
        text=True,
    )
    assert out.returncode != 0 and "appliance" in out.stderr


@pytest.mark.parametrize("unit", sorted(MAX_EXPOSURE))
def test_units_security_exposure(root, unit):
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager", unit],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout).group(1))
    assert score <= MAX_EXPOSURE[unit], out.stdout


@pytest.mark.parametrize("unit", sorted(MAX_EXPOSURE))
def test_units_contract(unit):
    text = (REPO / "systemd" / unit).read_text()
    for line in (
        "Type=notify",
        "Restart=on-failure",
        "StateDirectory=appliance",
        "User=appliance",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "DevicePolicy=closed",
        "Environment=APPLIANCE_CONFIG=/etc/appliance/appliance.toml",
    ):
        assert line in text, line
    assert re.search(r"^WatchdogSec=\S+", text, re.M)
    assert re.search(r"^StartLimitBurst=\d+", text, re.M)
    assert "PrivateDevices" not in text and "PrivateUsers" not in text
    device_lines = re.findall(r"^DeviceAllow=.*$", text, re.M)
    if unit == "appliance-indicator.service":
        assert device_lines == ["DeviceAllow=char-gpiochip rw", "DeviceAllow=char-i2c rw"]
    else:
        assert device_lines == []


def test_units_agent_waits_for_network_and_clock():
    text = (REPO / "systemd/appliance-sync.service").read_text()
    assert "After=network-online.target time-sync.target" in text
    assert "Wants=network-online.target" in text
