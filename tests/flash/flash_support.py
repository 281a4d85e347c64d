"""Helpers of the flasher tests: fixture paths, fake system commands, sample image data.

Named uniquely (not conftest) so `import` finds this module, whatever other test folders hold.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

from appliance.flash import system

HERE = Path(__file__).parent
FIXTURES = HERE / "fixtures"
FAKE = HERE / "fakebin" / "fake.py"
FAKE_COMMANDS = ("diskutil", "sudo", "sharing", "lsblk", "umount", "eject")

# `diskutil` arguments -> fixture, per scenario (the Mac of the shared fixtures).
DARWIN_BASE = {
    "list -plist": "macos/diskutil-all-usb-stick.plist",
    "info -plist /": "macos/diskutil-info-boot.plist",
    "info -plist disk0": "macos/diskutil-info-disk0.plist",
    "info -plist disk1": "macos/diskutil-info-disk1.plist",
}
DARWIN_SCENARIOS = {
    "usb-stick": {
        "list -plist physical": "macos/diskutil-list-physical-usb-stick.plist",
        "info -plist disk2": "macos/diskutil-info-disk2-usb-stick.plist",
    },
    "sd-slot": {
        "list -plist physical": "macos/diskutil-list-physical-sd-slot.plist",
        "info -plist disk4": "macos/diskutil-info-disk4-sd-slot.plist",
        "info -plist disk4s1": "macos/diskutil-info-disk4s1.plist",
    },
    "sd-locked": {
        "list -plist physical": "macos/diskutil-list-physical-sd-slot.plist",
        "info -plist disk4": "macos/diskutil-info-disk4-sd-slot-locked.plist",
        "info -plist disk4s1": "macos/diskutil-info-disk4s1.plist",
    },
    "sd-readonly-volume": {
        "list -plist physical": "macos/diskutil-list-physical-sd-slot.plist",
        "info -plist disk4": "macos/diskutil-info-disk4-sd-slot.plist",
        "info -plist disk4s1": "macos/diskutil-info-disk4s1-readonly.plist",
    },
}


class FakeSystem:
    """Fake commands on PATH that replay fixtures and record their calls."""

    def __init__(self, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.root, self.mp = root, monkeypatch
        self.bin, self.dev, self.state = root / "bin", root / "dev", root / "state"
        self.log = root / "calls.jsonl"
        for d in (self.bin, self.dev, self.state):
            d.mkdir(parents=True)
        for name in FAKE_COMMANDS:
            wrapper = self.bin / name
            wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "{FAKE}" {name} "$@"\n')
            wrapper.chmod(0o755)
        monkeypatch.setenv("PATH", f"{self.bin}{os.pathsep}{os.environ['PATH']}")
        for key, value in (("LOG", self.log), ("DEV", self.dev), ("STATE", self.state)):
            monkeypatch.setenv(f"FAKE_{key}", str(value))
        self.log.write_text("")

    def darwin(self, scenario: str, extra: dict | None = None) -> FakeSystem:
        """Make diskutil replay a macOS scenario."""
        table = {**DARWIN_BASE, **DARWIN_SCENARIOS[scenario], **(extra or {})}
        folder = self.root / f"diskutil-{scenario}"
        folder.mkdir(exist_ok=True)
        for args, fixture in table.items():
            (folder / args.replace("/", "%2F")).symlink_to(FIXTURES / fixture)
        self.mp.setenv("FAKE_DISKUTIL", str(folder))
        self.mp.setenv(system.PLATFORM_ENV, "darwin")
        return self

    def linux(self, lsblk_fixture: str) -> FakeSystem:
        """Make lsblk replay a Linux fixture."""
        path = Path(lsblk_fixture)
        self.mp.setenv("FAKE_LSBLK", str(path if path.is_absolute() else FIXTURES / path))
        self.mp.setenv(system.PLATFORM_ENV, "linux")
        return self

    def disk(self, name: str, size: int) -> Path:
        """Create the sparse file that stands in for /dev/NAME behind the fake sudo."""
        path = self.dev / name
        with open(path, "wb") as f:
            f.truncate(size)
        return path

    def calls(self) -> list:
        """Return every recorded call: {"cmd", "args", "sudo"}."""
        out = []
        for line in self.log.read_text().splitlines():
            who, cmd, *args = line.split("\t")
            out.append({"cmd": cmd, "args": args, "sudo": who == "sudo"})
        return out

    def mutating(self) -> list:
        """Return the calls that change something, as 'cmd args...' strings."""
        quiet = ("list", "info")
        out = []
        for c in self.calls():
            if c["cmd"] == "diskutil" and c["args"][:1] and c["args"][0] in quiet:
                continue
            if c["cmd"] == "lsblk":
                continue
            out.append(" ".join([c["cmd"], *c["args"]]))
        return out


# Loop devices a test attached itself: the only /dev paths tests may open.
ALLOWED_DEVICES: set = set()


def image_bytes(size: int = 3 * (1 << 20) + 12345, seed: int = 8) -> bytes:
    """Return a small image-like payload: random runs, text and zeros, odd length."""
    rnd = random.Random(seed)
    parts, total = [], 0
    while total < size:
        kind = rnd.choice(("random", "zeros", "text"))
        n = rnd.randint(1000, 300_000)
        if kind == "random":
            chunk = rnd.randbytes(n) if hasattr(rnd, "randbytes") else os.urandom(n)
        elif kind == "zeros":
            chunk = bytes(n)
        else:
            chunk = (b"root:x:0:0:root:/root:/bin/bash\n" * (n // 32 + 1))[:n]
        parts.append(chunk)
        total += n
    return b"".join(parts)[:size]
