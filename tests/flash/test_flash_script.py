"""scripts/flash-sd: which Python it picks on a stock Mac, a Homebrew Mac, and a bare machine."""

from __future__ import annotations

import subprocess
from pathlib import Path

from flash_support import HERE

SCRIPT = HERE.parents[1] / "scripts" / "flash-sd"


def _interpreter(folder: Path, name: str, minor: int) -> None:
    """Create a stand-in interpreter that answers the script's version question."""
    path = folder / name
    path.write_text(f"#!/bin/sh\necho {minor}\n")
    path.chmod(0o755)


def _which(tmp_path: Path, *interpreters: tuple) -> subprocess.CompletedProcess:
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, minor in interpreters:
        _interpreter(folder, name, minor)
    env = {
        "PATH": str(folder),
        "FLASH_SD_HOMEBREW_DIRS": "",
        "HOME": str(tmp_path),
        "APPLIANCE_FLASH_VENV": str(tmp_path / "venv"),
    }
    return subprocess.run(
        ["/bin/bash", str(SCRIPT), "--which-python"], env=env, capture_output=True, text=True, timeout=30
    )


def test_stock_mac_python39_gets_the_minimal_venv(tmp_path):
    done = _which(tmp_path, ("python3", 9))
    assert done.returncode == 0, done.stderr
    assert "(3.9), mode: minimal" in done.stdout


def test_newer_python_is_preferred_and_gets_the_full_package(tmp_path):
    done = _which(tmp_path, ("python3", 9), ("python3.12", 12), ("python3.10", 10))
    assert done.returncode == 0, done.stderr
    assert "python3.12 (3.12), mode: full" in done.stdout


def test_newest_old_python_wins_when_none_is_311(tmp_path):
    done = _which(tmp_path, ("python3", 9), ("python3.10", 10))
    assert "python3.10 (3.10), mode: minimal" in done.stdout


def test_homebrew_python_outside_path_is_found(tmp_path):
    brew = tmp_path / "homebrew"
    brew.mkdir()
    _interpreter(brew, "python3", 13)
    env = {"PATH": str(tmp_path), "FLASH_SD_HOMEBREW_DIRS": str(brew), "HOME": str(tmp_path)}
    done = subprocess.run(
        ["/bin/bash", str(SCRIPT), "--which-python"], env=env, capture_output=True, text=True, timeout=30
    )
    assert f"{brew}/python3 (3.13), mode: full" in done.stdout


def test_no_python_says_exactly_how_to_get_one(tmp_path):
    done = _which(tmp_path, ("python3", 8))
    assert done.returncode == 1
    assert "xcode-select --install" in done.stderr and "brew install python@3.12" in done.stderr


def test_flash_requirements_match_the_flash_extra():
    """scripts/flash-sd installs appliance/flash/requirements.txt; pyproject's [flash] says the same."""
    import tomllib

    root = HERE.parents[1]
    lines = (root / "appliance/flash/requirements.txt").read_text().splitlines()
    wanted = {line.split("#")[0].replace(" ", "") for line in lines if line.split("#")[0].strip()}
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["flash"]
    assert wanted == {e.replace(" ", "") for e in extra}
    assert "libpass>=1.9" in wanted and any(w.startswith("tomli") for w in wanted)
