"""A real block device: flashing a loop device attached for the test, and refusing loop
devices and files that the kernel is really using (mounted ext4, active swap).

This runs as root with util-linux (losetup, lsblk, swapon) and e2fsprogs, as scripts/test
does. Where a loop device cannot be attached, a filesystem mounted or swap switched on, the
test fails and says why: a refusal that was never tried must not pass.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

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


# -- what the kernel is using is never written (issue 14, finding 11) -------------------------


def _root(*argv: str) -> None:
    """Run a setup command as root; fail the test saying why when it cannot."""
    if os.geteuid() != 0:
        pytest.fail(f"{argv[0]} needs root (running as uid {os.geteuid()}); run scripts/test as root")
    if not shutil.which(argv[0]):
        pytest.fail(f"{argv[0]} not found on PATH; install util-linux and e2fsprogs")
    done = subprocess.run(list(argv), capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(
            f"`{' '.join(argv)}` failed (exit {done.returncode}): {(done.stderr or done.stdout).strip()}"
        )


@contextlib.contextmanager
def _loop(backing: Path) -> Iterator[str]:
    device = _attach(backing)
    try:
        yield device
    finally:
        subprocess.run(["losetup", "-d", device], check=False)


@contextlib.contextmanager
def _mounted(device: str, point: Path) -> Iterator[Path]:
    point.mkdir()
    _root("mount", device, str(point))
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=False)


@contextlib.contextmanager
def _swap_on(path: str) -> Iterator[str]:
    _root("mkswap", "-q", path)
    _root("swapon", path)
    try:
        yield path
    finally:
        subprocess.run(["swapoff", path], check=False)


def _ext4_file(path: Path) -> Path:
    with open(path, "wb") as f:
        f.truncate(16 << 20)
    _root("mkfs.ext4", "-q", "-F", str(path))
    return path


def _swap_file(path: Path) -> Path:
    path.write_bytes(bytes(8 << 20))  # written out: the kernel refuses swap files with holes
    path.chmod(0o600)
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _still_ext4(path: Path, images) -> bool:
    """Return True when the file still holds its ext4 (mounting changes its bytes, not that)."""
    data = path.read_bytes()
    return data[1080:1082] == b"\x53\xef" and images["data"][:65536] not in data


def _flash_to(device: str, images) -> object:
    return CliRunner().invoke(flash, ["--image", str(images["raw"]), "--device", device, "--yes"])


@pytest.fixture
def real_linux(monkeypatch):
    """The real lsblk and the real kernel (no fake commands, no forced platform)."""
    monkeypatch.delenv("APPLIANCE_FLASH_PLATFORM", raising=False)


def test_a_mounted_loop_device_is_refused_with_its_mount_point(real_linux, images, tmp_path):
    backing = _ext4_file(tmp_path / "fs.img")
    with _loop(backing) as device, _mounted(device, tmp_path / "mnt") as point:
        listed = {d.path: d for d in drives_linux.list_drives(include_loop=True)}
        assert (
            f"{device} is mounted at {point} (unmount it first: sudo umount {point})" in listed[device].in_use
        )
        result = _flash_to(device, images)
    assert result.exit_code == 1, result.output
    assert f"Refusing to write {os.path.basename(device)}" in result.output
    assert f"{device} is mounted at {point}" in result.output and "Traceback" not in result.output
    assert _still_ext4(backing, images)


def test_the_file_behind_a_mounted_loop_device_is_refused(real_linux, images, tmp_path):
    backing = _ext4_file(tmp_path / "fs.img")
    with _loop(backing) as device, _mounted(device, tmp_path / "mnt") as point:
        result = _flash_to(str(backing), images)
    assert result.exit_code == 1, result.output
    assert f"Refusing to write file {backing}" in result.output
    assert f"{backing} backs {device}, and {device} is mounted at {point}" in result.output
    assert f"sudo losetup -d {device}" in result.output
    assert _still_ext4(backing, images)


def test_the_file_behind_an_unmounted_loop_device_may_be_written(real_linux, images, tmp_path):
    backing = _ext4_file(tmp_path / "fs.img")
    with _loop(backing):
        result = _flash_to(str(backing), images)
    assert result.exit_code == 0, result.output
    assert backing.read_bytes() == images["data"]


def test_an_active_swap_file_is_refused(real_linux, images, tmp_path):
    swap = _swap_file(tmp_path / "swapfile")
    with _swap_on(str(swap)):
        before = _digest(swap)
        result = _flash_to(str(swap), images)
        assert _digest(swap) == before
    assert result.exit_code == 1, result.output
    assert f"{swap} is active swap (release it first: sudo swapoff {swap})" in result.output


def test_a_loop_device_used_as_swap_is_refused(real_linux, images, tmp_path):
    swap = _swap_file(tmp_path / "swapfile")
    with _loop(swap) as device, _swap_on(device):
        result = _flash_to(device, images)
        via_file = _flash_to(str(swap), images)
    assert result.exit_code == 1, result.output
    assert f"{device} is active swap (release it first: sudo swapoff {device})" in result.output
    assert (
        via_file.exit_code == 1 and f"{swap} backs {device}, and {device} is active swap" in via_file.output
    )
