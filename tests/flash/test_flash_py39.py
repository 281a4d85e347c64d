"""The flasher stays runnable on a stock Mac's Python 3.9 (BRIEF section 9)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from flash_support import FIXTURES, HERE

ROOT = HERE.parents[1]


def _ruff() -> str:
    beside = Path(sys.executable).parent / "ruff"
    return str(beside) if beside.exists() else (shutil.which("ruff") or "ruff")


def _python39() -> str | None:
    """Return a working Python 3.9 interpreter, if this machine has one."""
    candidates = [shutil.which("python3.9") or ""]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    candidates += ["/usr/bin/python3.9", "/usr/local/bin/python3.9", "/opt/homebrew/bin/python3.9"]
    for path in filter(None, candidates):
        ok = subprocess.run(
            [path, "-c", "import sys; assert sys.version_info[:2] == (3, 9)"], capture_output=True
        )
        if ok.returncode == 0:
            return path
    return None


def test_flash_package_passes_ruff_for_py39():
    done = subprocess.run(
        [_ruff(), "check", "--target-version", "py39", "appliance/flash"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_flash_core_runs_on_python39(images, tmp_path):
    python = _python39()
    if python is None:
        pytest.skip("no Python 3.9 on this machine; the ruff py39 check above still ran")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [python, "-S", str(HERE / "flash_py39_core.py"), str(FIXTURES), str(images["xz"]), str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "ok 3.9"
