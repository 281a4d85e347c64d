"""Wheels as pip sees them: file names, tags, dependencies and markers, for one target Pi.

Only what checking an offline wheelhouse needs, with the standard library alone (the flasher
runs on a stock Mac's Python 3.9 without ``packaging``): PEP 427 file names, the tags a
Raspberry Pi OS CPython on aarch64 accepts (PEP 425/600), ``Requires-Dist`` from a wheel's
METADATA, PEP 508 markers, and version comparison good enough for specifiers and pins.
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ImageError
from .markers import evaluate, normalize


@dataclass(frozen=True)
class Target:
    """The Python a Raspberry Pi OS release installs into: CPython 3.minor on aarch64 glibc."""

    os_name: str  # "Raspberry Pi OS Bookworm"
    minor: int  # 11 -> CPython 3.11
    glibc: int  # 36 -> glibc 2.36
    machine: str = "aarch64"

    @property
    def python(self) -> str:
        return f"3.{self.minor}"

    def environment(self, extra: str = "") -> dict[str, str]:
        """Return the PEP 508 marker variables of this target."""
        return {
            "python_version": self.python,
            "python_full_version": f"{self.python}.0",
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "platform_python_implementation": "CPython",
            "sys_platform": "linux",
            "platform_system": "Linux",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_release": "",
            "platform_version": "",
            "extra": extra,
        }


@dataclass
class Wheel:
    """A wheel file in the wheelhouse."""

    path: Path
    name: str  # normalized: lower case, runs of -_. as one -
    version: str
    pythons: list[str]
    abis: list[str]
    platforms: list[str]
    size: int = 0
    _requires: list[str] | None = field(default=None, repr=False)

    def fits(self, target: Target) -> bool:
        """Return True when pip on the target would install this wheel."""
        return any(
            _tag_fits(py, abi, plat, target)
            for py in self.pythons
            for abi in self.abis
            for plat in self.platforms
        )

    def requires(self) -> list[str]:
        """Return the wheel's Requires-Dist lines (read from its METADATA once)."""
        if self._requires is None:
            self._requires = _requires_dist(self.path)
        return self._requires

    def provides_extras(self) -> list[str]:
        """Return the wheel's Provides-Extra names."""
        return [normalize(v) for v in _metadata_field(self.path, "Provides-Extra")]


def parse_name(path: Path) -> Wheel:
    """Return the wheel a file name describes; refuse a name that is not a wheel's."""
    parts = path.name[: -len(".whl")].split("-")
    if not path.name.endswith(".whl") or len(parts) not in (5, 6):
        raise ImageError(
            f"{path.name} in the wheelhouse is not named like a wheel "
            "(name-version-python-abi-platform.whl); remove it or download it again"
        )
    name, version, py, abi, plat = parts[0], parts[1], parts[-3], parts[-2], parts[-1]
    return Wheel(path, normalize(name), version, py.split("."), abi.split("."), plat.split("."))


_MANYLINUX = re.compile(r"^manylinux_(\d+)_(\d+)_(\w+)$")
_LEGACY = {"manylinux2014": 17, "manylinux2010": 12, "manylinux1": 5}  # glibc 2.x they need


def _platform_fits(plat: str, target: Target) -> bool:
    if plat in ("any", f"linux_{target.machine}"):
        return True
    m = _MANYLINUX.match(plat)
    if m:
        return int(m.group(1)) == 2 and int(m.group(2)) <= target.glibc and m.group(3) == target.machine
    legacy, _, arch = plat.partition("_")
    return legacy in _LEGACY and arch == target.machine and _LEGACY[legacy] <= target.glibc


def _tag_fits(py: str, abi: str, plat: str, target: Target) -> bool:
    if not _platform_fits(plat, target):
        return False
    cp = f"cp3{target.minor}"
    if abi == "none":
        return py in ("py3", f"py3{target.minor}", cp)
    if abi == cp:
        return py == cp
    if abi == "abi3":  # the stable ABI: built for 3.x, runs on 3.x and later
        m = re.match(r"^cp3(\d+)$", py)
        return m is not None and int(m.group(1)) <= target.minor
    return False


# -- METADATA ----------------------------------------------------------------------------


def _metadata(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as z:
            names = [n for n in z.namelist() if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
            if not names:
                raise ImageError(f"{path.name} holds no .dist-info/METADATA: it is not a complete wheel")
            return z.read(names[0]).decode("utf-8", errors="replace")
    except (OSError, zipfile.BadZipFile) as e:
        raise ImageError(
            f"{path.name} in the wheelhouse cannot be read as a wheel ({e}); download it again"
        ) from None


def _metadata_field(path: Path, key: str) -> list[str]:
    head = _metadata(path).split("\n\n", 1)[0]  # the body (the long description) follows a blank line
    prefix = key.lower() + ":"
    return [line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith(prefix)]


def _requires_dist(path: Path) -> list[str]:
    return _metadata_field(path, "Requires-Dist")


def read_record(path: Path) -> dict[str, str]:
    """Return {file: "sha256=..."} from a wheel's RECORD (what it would install, hashed)."""
    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if n.endswith(".dist-info/RECORD")]
        text = z.read(names[0]).decode("utf-8", errors="replace") if names else ""
    out = {}
    for line in text.splitlines():
        parts = line.rsplit(",", 2)
        if len(parts) == 3 and parts[1]:
            out[parts[0]] = parts[1]
    return out


# -- requirements (PEP 508) ------------------------------------------------------------------

_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?\s*(.*)$")


@dataclass(frozen=True)
class Requirement:
    name: str  # normalized
    extras: tuple[str, ...]
    specifiers: str  # e.g. ">=2.0,<3" ("" for any)
    marker: str

    def wanted(self, target: Target, extras: tuple[str, ...] = ()) -> bool:
        """Return True when the requirement applies on the target, with the parent's extras."""
        if not self.marker:
            return True
        return any(evaluate(self.marker, target.environment(e)) for e in (extras or ("",)))


def parse_requirement(line: str) -> Requirement:
    """Return a Requires-Dist line as a Requirement."""
    spec, _, marker = line.partition(";")
    m = _REQUIREMENT.match(spec)
    if not m:
        raise ImageError(f'cannot read the requirement "{line}" in a wheel\'s METADATA')
    extras = tuple(normalize(e) for e in (m.group(2) or "").split(",") if e.strip())
    rest = m.group(3).strip()
    if rest.startswith("@"):  # a direct URL: no version to check
        rest = ""
    return Requirement(normalize(m.group(1)), extras, rest.strip("() "), marker.strip())
