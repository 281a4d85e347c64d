"""A real block device: flashing a loop device attached for the test.

This runs as root with util-linux (losetup, lsblk), as scripts/test does. Where a loop
device cannot be attached the test fails and says why: a flash to a real device that did
not happen must not pass.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from flash_support import ALLOWED_DEVICES, FIXTURES

from appliance.flash import drives_linux, safety
from appliance.flash.cli import flash


def _attach(backing) -> str:
    """Return a new loop device backed by the file; fail the test saying why it cannot."""
    if os.geteuid() != 0:
        pytest.fail(
            f"attaching a loop device needs root (running as uid {os.geteuid()}); run scripts/test as root"
        )
    missing = [c for c in ("losetup", "lsblk") if not shutil.which(c)]
    if missing:
        pytest.fail(f"{', '.join(missing)} not found on PATH; install util-linux")
    done = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True)
    if done.returncode != 0 or not done.stdout.strip().startswith("/dev/loop"):
        pytest.fail(
            f"losetup -f --show {backing} failed (exit {done.returncode}): "
            f"{(done.stderr or done.stdout).strip()}; this machine or container gives no loop devices"
        )
    return done.stdout.strip()


def test_flash_to_a_real_loop_device(images, tmp_path, monkeypatch):
    backing = tmp_path / "card.bin"
    with open(backing, "wb") as f:
        f.truncate(8 << 20)
    device = _attach(backing)
    monkeypatch.delenv("APPLIANCE_FLASH_PLATFORM", raising=False)
    ALLOWED_DEVICES.add(device)
    try:
        result = CliRunner().invoke(flash, ["--image", str(images["xz"]), "--device", device, "--yes"])
        assert result.exit_code == 0, result.output
        assert "verified" in result.output and "ejected" not in result.output
    finally:
        ALLOWED_DEVICES.discard(device)
        subprocess.run(["losetup", "-d", device], check=False)
    written = backing.read_bytes()
    assert written[: len(images["data"])] == images["data"]
    assert written[len(images["data"]) :] == bytes(len(written) - len(images["data"]))


def test_loop_device_is_recognised_but_never_proposed_without_device():
    data = json.loads((FIXTURES / "linux" / "lsblk-this-machine-loop.json").read_text())
    drives = safety.judge(drives_linux.list_drives(data=data, include_loop=True))
    loop = safety.choose(drives, "/dev/loop0")
    assert loop.kind == "loop" and loop.target and loop.size == 8 << 20
    assert all(d.kind != "loop" for d in drives_linux.list_drives(data=data))
