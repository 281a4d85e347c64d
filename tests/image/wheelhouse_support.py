"""Wheelhouses for the offline-bundle tests, made offline on this machine.

The appliance's own wheel is built for real from this checkout (``pip wheel --no-deps
--no-build-isolation``, on a copy of the files the card carries, so the working tree gets no
build/ folder). Its dependencies cannot be downloaded for aarch64 without network, so each is
a stand-in built here: the real METADATA of that package as installed in the test
environment (so the dependency graph is the real one, markers and extras included) and its
real WHEEL tags retagged from x86_64 to aarch64 (and to another CPython when asked), with a
one-line module instead of its code.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import io
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _can_build_wheels(python: str) -> bool:
    probe = (
        "import setuptools, pip\n"
        "try:\n import wheel\nexcept ImportError:\n from setuptools.command import bdist_wheel"
    )
    return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0


def build_appliance_wheel(out: Path) -> Path:
    """Return the appliance's wheel, built from this checkout without network."""
    from appliance.image.payload import source_bundle

    src = out / "src"
    src.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(source_bundle(REPO)), mode="r:gz") as tar:
        tar.extractall(src)  # noqa: S202 - our own tarball
    candidates = [sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]
    python = next((p for p in candidates if p and Path(p).exists() and _can_build_wheels(p)), None)
    if python is None:
        pytest.fail(
            "no Python here can build a wheel without network: the test environment needs the "
            "`wheel` package or setuptools >= 70.1 (pip install wheel)"
        )
    done = subprocess.run(
        [python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(out), str(src)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"pip wheel of the appliance failed: {done.stderr[-2000:]}")
    shutil.rmtree(src)
    (wheel,) = out.glob("appliance-*.whl")
    return wheel


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def stand_in(dist: importlib.metadata.Distribution, out: Path, minor: int = 11, padding: int = 0) -> Path:
    """Return a stand-in wheel of an installed distribution, retagged for the Pi."""
    name, version = dist.metadata["Name"], dist.version
    wheel_file = (dist.read_text("WHEEL") or "").splitlines()
    tags = [line.split(":", 1)[1].strip() for line in wheel_file if line.startswith("Tag:")]
    tags = [t for t in tags if t.count("-") == 2] or ["py3-none-any"]
    retag = [re.sub(r"cp311", f"cp3{minor}", t.replace("x86_64", "aarch64")) for t in tags]
    pys, abis, plats = (sorted({t.split("-")[i] for t in retag}) for i in range(3))
    stem = re.sub(r"[-_.]+", "_", name)
    info = f"{stem}-{version}.dist-info"
    files = {
        f"{stem}_standin.py": b"STAND_IN = True\n" + (b"#" * padding),
        f"{info}/METADATA": (dist.read_text("METADATA") or "").encode(),
        f"{info}/WHEEL": ("Wheel-Version: 1.0\nGenerator: appliance-tests\nRoot-Is-Purelib: false\n"
                          + "".join(f"Tag: {t}\n" for t in retag)).encode(),
    }  # fmt: skip
    record = "\n".join(_record_line(n, d) for n, d in files.items()) + f"\n{info}/RECORD,,\n"
    path = out / f"{stem}-{version}-{'.'.join(pys)}-{'.'.join(abis)}-{'.'.join(plats)}.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        for n, d in files.items():
            z.writestr(n, d)
        z.writestr(f"{info}/RECORD", record)
    return path


def installed() -> list[importlib.metadata.Distribution]:
    """Return every distribution of the test environment but the appliance itself."""
    seen, out = set(), []
    for dist in importlib.metadata.distributions():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"] or "").lower()
        if name and name not in seen and name not in ("appliance", "pip"):
            seen.add(name)
            out.append(dist)
    return out


def make_wheelhouse(folder: Path, appliance: Path, minor: int = 11, leave_out: tuple = ()) -> Path:
    """Fill ``folder`` with the appliance's wheel and stand-ins of every installed package."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(appliance, folder / appliance.name)
    for dist in installed():
        name = re.sub(r"[-_.]+", "-", dist.metadata["Name"]).lower()
        if name not in leave_out:
            stand_in(dist, folder, minor)
    return folder


PI_PLATFORMS = [
    "linux_aarch64",
    "manylinux2014_aarch64",
    *[f"manylinux_2_{n}_aarch64" for n in range(17, 37)],
]


def pip_resolves(folder: Path, python: str, dest: Path) -> subprocess.CompletedProcess:
    """Run pip itself, offline, as it would resolve the appliance from ``folder`` on a Pi."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip settings must not add indexes
    nodot = python.replace(".", "")
    argv = [sys.executable, "-m", "pip", "download", "--no-index", "--find-links", str(folder),
            "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
            "--abi", f"cp{nodot}", "--abi", "abi3", "--abi", "none",
            *[a for p in PI_PLATFORMS for a in ("--platform", p)],
            "-c", str(REPO / "scripts/constraints.txt"), "-d", str(dest), "-q", "appliance[pi]"]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="session")
def appliance_wheel(tmp_path_factory) -> Path:
    """The appliance's own wheel, built once from this checkout."""
    return build_appliance_wheel(tmp_path_factory.mktemp("appliance-wheel"))


@pytest.fixture(scope="session")
def pi_wheels(tmp_path_factory, appliance_wheel):
    """Return a maker of wheelhouses: fresh folders, for Bookworm (3.11) or Trixie (3.13)."""
    cache: dict = {}
    base = tmp_path_factory.mktemp("wheelhouses")

    def make(dest: Path, minor: int = 11, leave_out: tuple = ()) -> Path:
        key = (minor, tuple(sorted(leave_out)))
        if key not in cache:
            cache[key] = make_wheelhouse(base / f"cp3{minor}-{len(cache)}", appliance_wheel, minor, leave_out)
        shutil.copytree(cache[key], dest)
        return dest

    return make
