"""A real block device: flashing a loop device where this machine allows attaching one.

Where it does not (not root, no loop support), the test still checks that a loop device is
recognised, listed only when named, and accepted, from lsblk output captured on this machine.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

from click.testing import CliRunner
from flash_support import ALLOWED_DEVICES, FIXTURES

from appliance.flash import drives_linux, safety
from appliance.flash.cli import flash


def _attach(backing) -> str | None:
    """Return a new loop device backed by the file, or None if this machine does not allow it."""
    if os.geteuid() != 0 or not shutil.which("losetup") or not shutil.which("lsblk"):
        return None
    done = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def _captured_loop_is_recognised() -> None:
    data = json.loads((FIXTURES / "linux" / "lsblk-this-machine-loop.json").read_text())
    drives = safety.judge(drives_linux.list_drives(data=data, include_loop=True))
    loop = safety.choose(drives, "/dev/loop0")
    assert loop.kind == "loop" and loop.target and loop.size == 8 << 20


def test_flash_to_a_real_loop_device(images, tmp_path, monkeypatch):
    backing = tmp_path / "card.bin"
    with open(backing, "wb") as f:
        f.truncate(8 << 20)
    device = _attach(backing)
    if device is None:
        _captured_loop_is_recognised()  # the real write needs root and loop support
        return
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


def test_loop_device_is_never_proposed_without_device():
    _captured_loop_is_recognised()
    data = json.loads((FIXTURES / "linux" / "lsblk-this-machine-loop.json").read_text())
    assert all(d.kind != "loop" for d in drives_linux.list_drives(data=data))
