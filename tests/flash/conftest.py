"""Fixtures for the flasher tests: fake system commands on PATH, sample images, safety guard."""

from __future__ import annotations

import gzip
import lzma
import zipfile
from pathlib import Path

import pytest
from flash_support import ALLOWED_DEVICES, FakeSystem, image_bytes

from appliance.flash import rawdev, system


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSystem:
    """Fake diskutil/sudo/sharing/lsblk/umount/eject on PATH."""
    return FakeSystem(tmp_path / "fake", monkeypatch)


@pytest.fixture
def not_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run as an ordinary user would: root steps go through (the fake) sudo."""
    monkeypatch.setattr(system, "is_root", lambda: False)


@pytest.fixture(autouse=True)
def never_a_real_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Refuse any direct open of /dev/* in tests, except loop devices a test attached itself."""
    real_open = rawdev._open_local

    def guarded(path: str, mode: str) -> int:
        if path.startswith("/dev/") and path not in ALLOWED_DEVICES:
            raise AssertionError(f"test tried to open the real device {path}")
        return real_open(path, mode)

    monkeypatch.setattr(rawdev, "_open_local", guarded)
    monkeypatch.setenv("APPLIANCE_FLASH_PROGRESS", "plain")
    monkeypatch.setenv("APPLIANCE_FLASH_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Return {kind: path} for one image as .img, .img.xz, .img.gz and .zip, plus the bytes."""
    folder = tmp_path_factory.mktemp("images")
    data = image_bytes()
    raw = folder / "pi.img"
    raw.write_bytes(data)
    (folder / "pi.img.xz").write_bytes(lzma.compress(data, preset=1))
    (folder / "pi.img.gz").write_bytes(gzip.compress(data, compresslevel=1))
    with zipfile.ZipFile(folder / "pi.zip", "w", zipfile.ZIP_DEFLATED) as z:
        z.write(raw, "pi.img")
    return {
        "data": data,
        "raw": raw,
        "xz": folder / "pi.img.xz",
        "gz": folder / "pi.img.gz",
        "zip": folder / "pi.zip",
    }
