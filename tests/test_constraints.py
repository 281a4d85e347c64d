"""Reproducible installs: the constraints files pin every dependency, and the tests run on them."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
REGEN = "regenerate it as its header says"


def pins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, pinned = line.partition("==")
            out[canonicalize_name(name)] = pinned
    return out


def requirements(*extras: str) -> list[Requirement]:
    project = PYPROJECT["project"]
    found = [Requirement(r) for r in project["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return found


@pytest.mark.parametrize("extra", ["", "pi", "test", "flash"])
def test_constraints_pin_every_dependency_within_its_bounds(extra):
    pinned = pins(ROOT / "scripts/constraints.txt")
    for req in requirements(*([extra] if extra else [])):
        if req.marker and not req.marker.evaluate({"python_version": "3.11"}):
            continue
        name = canonicalize_name(req.name)
        assert name in pinned, f"scripts/constraints.txt does not pin {req.name}: {REGEN}"
        assert req.specifier.contains(pinned[name]), f"{req.name}=={pinned[name]} breaks {req}: {REGEN}"


def test_constraints_are_what_the_tests_run_on():
    for name, pinned in pins(ROOT / "scripts/constraints.txt").items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # pinned for another platform's extras
        assert installed == pinned, f"{name} {installed} is installed, the constraints pin {pinned}: {REGEN}"


def test_constraints_of_the_stock_mac_pin_what_flash_sd_installs():
    pinned = pins(ROOT / "appliance/flash/constraints-py39.txt")
    lines = (ROOT / "appliance/flash/requirements.txt").read_text().splitlines()
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        req = Requirement(text)
        name = canonicalize_name(req.name)
        if req.marker and not req.marker.evaluate({"python_version": "3.9"}):
            continue
        assert name in pinned and req.specifier.contains(pinned[name]), f"{req} is not pinned for Python 3.9"


def test_constraints_the_laptop_installs_only_what_flashing_needs():
    # The package's own dependencies are the flasher's; everything the Pi runs is in [pi], so
    # `pip install .` (flash-sd's full mode) brings no database driver, web server or GPIO.
    base = {canonicalize_name(r.name) for r in requirements()}
    flash = {canonicalize_name(r.name) for r in requirements("flash")}
    pi = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["optional-dependencies"]["pi"]}
    assert base == flash
    assert {"sqlalchemy", "psycopg2-binary", "flask", "gpiozero", "luma-oled", "waitress"} <= pi
    assert not base & pi


@pytest.mark.parametrize("script", ["demo", "test", "bench"])
def test_constraints_the_scripts_that_run_the_stack_install_the_pi_side(script):
    # The package alone is the flasher's; a script that runs the sync or the page without
    # [pi] fails at its first import of sqlalchemy (scripts/demo did once).
    calls = [
        line.split()[1:]
        for line in (ROOT / "scripts" / script).read_text().splitlines()
        if line.strip().startswith("ensure_venv ")
    ]
    assert calls and all("pi" in (args[0] if args else "").split(",") for args in calls), calls
