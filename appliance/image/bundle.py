"""The offline bundle (issue 16): a wheelhouse put on the card, so first boot installs without
internet (``--bundle DIR`` of ``appliance flash`` and ``appliance image customize``).

The wheels go to the boot partition as ``appliance/wheels/*.whl``; on the Pi, install-on-pi
installs from there (``pip install --no-index --find-links``) when that folder exists.
Which Python the wheels must fit follows from the image: Bookworm images (first boot by
``firstrun.sh``) run CPython 3.11 with glibc 2.36, Trixie images (cloud-init) CPython 3.13
with glibc 2.41, both 64-bit (aarch64; the appliance needs the 64-bit OS). Before anything
is written the folder must hold the appliance's own wheel and a wheel of every dependency,
followed through each wheel's METADATA with the Pi's markers and, where
``scripts/constraints.txt`` pins one, of exactly that version (install-on-pi installs with
those pins); and the wheels must fit on the boot partition with room to spare.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from . import boot_format
from .errors import BundleError
from .fat import FatVolume
from .markers import normalize, satisfies, version_key
from .payload import PAYLOAD_DIR, BootFile
from .wheels import Requirement, Target, Wheel, parse_name, parse_requirement, read_record

WHEELS_DIR = f"{PAYLOAD_DIR}/wheels"
APPLIANCE = "appliance"
PI_EXTRAS = ("pi",)  # installed too when the appliance's wheel offers them
TARGETS = {  # what each first-boot format says about the Raspberry Pi OS release
    boot_format.FIRSTRUN: Target("Raspberry Pi OS Bookworm", 11, 36),
    boot_format.CLOUD_INIT: Target("Raspberry Pi OS Trixie", 13, 41),
}
MB = 1000 * 1000
SPARE_MIN = 8 * 1024 * 1024  # kept free on the boot partition, at least, and
SPARE_SHARE = 10  # per cent of it: kernel and firmware updates write there
WITHOUT_PEEK_LIMIT = 256 * 1024 * 1024  # more than a 512 MB boot partition keeps room for
PAYLOAD_ALLOWANCE = 4 * 1024 * 1024  # the rest of appliance/ (source, config), before it is made


@dataclass
class Found:
    """What a wheelhouse gives one target: the wheels to copy, and what is missing."""

    target: Target
    wheels: list[Wheel] = field(default_factory=list)  # every wheel that fits the target
    chosen: dict[str, Wheel] = field(default_factory=dict)  # name -> the wheel pip would take
    missing: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(w.size for w in self.wheels)


def target_for(fmt: str) -> Target:
    """Return the Python the image's first-boot format implies."""
    return TARGETS[fmt]


class Wheelhouse:
    """A folder of wheels, checked against the appliance source it must install."""

    def __init__(self, folder: str, root: Path) -> None:
        if not os.path.isdir(folder):
            raise BundleError(
                f"--bundle {folder}: not a folder; give the folder that holds the wheels (*.whl)"
            )
        self.folder = folder
        self.root = root
        self.wheels = []
        for path in sorted(Path(folder).glob("*.whl")):
            wheel = parse_name(path)
            wheel.size = path.stat().st_size
            self.wheels.append(wheel)
        # install-on-pi installs with these pins, and the appliance of this very checkout.
        self.pins = read_pins(root / "scripts" / "constraints.txt")
        self.pins[APPLIANCE] = project_version(root / "pyproject.toml")
        self.others = sorted(
            p.name for p in Path(folder).iterdir() if p.is_file() and not p.name.endswith(".whl")
        )

    def check(self, targets: list[Target]) -> Found:
        """Return what the folder gives the first target it is complete for; refuse it otherwise."""
        results = [self.resolve(t) for t in targets]
        for found in results:
            if not found.missing:
                own = found.chosen.get(APPLIANCE)
                stale = self.stale_sources(own) if own else []
                if stale:
                    found.warnings.append(
                        f"the appliance wheel in {self.folder} was built from other sources than this "
                        f"checkout ({len(stale)} file(s) differ, e.g. {stale[0]}): the Pi would run "
                        "that code; rebuild it with: pip wheel --no-deps --ignore-requires-python "
                        f"-w {self.folder} ."
                    )
                return found
        raise BundleError(self._incomplete(results, targets))

    def _incomplete(self, results: list[Found], targets: list[Target]) -> str:
        what = " or ".join(f"{t.os_name} (CPython {t.python}, aarch64)" for t in targets)
        lines = [f"--bundle {self.folder} is not complete for {what}; nothing was written."]
        if not self.wheels:
            lines.append("It holds no wheels (*.whl) at all.")
        for found in results:
            lines.append(f"Missing for {found.target.os_name}:")
            lines += [f"  - {m}" for m in found.missing]
        sources = [n for n in self.others if n.endswith((".tar.gz", ".zip", ".tar.bz2"))]
        if sources:
            lines.append(
                f"It holds source archives ({', '.join(sources[:3])}): the Pi cannot build them "
                "offline; download wheels (--only-binary=:all:)."
            )
        lines.append(recipe(self.folder, targets[0] if len(targets) == 1 else None, self.pins[APPLIANCE]))
        return "\n".join(lines)

    def resolve(self, target: Target) -> Found:
        """Return the wheels for ``target`` and every requirement none of them meets."""
        found = Found(target, [w for w in self.wheels if w.fits(target)])
        todo: list[tuple[Requirement, str]] = [(Requirement(APPLIANCE, PI_EXTRAS, "", ""), "")]
        seen: set = set()
        while todo:
            req, parent = todo.pop(0)
            if (req.name, req.extras) in seen:
                continue
            seen.add((req.name, req.extras))
            wheel = self._choose(found, req, parent)
            if wheel is None:
                continue
            extras = tuple(e for e in req.extras if e in wheel.provides_extras()) if req.extras else ()
            for line in wheel.requires():
                child = parse_requirement(line)
                if child.wanted(target, extras):
                    todo.append((child, wheel.name))
        return found

    def _choose(self, found: Found, req: Requirement, parent: str) -> Wheel | None:
        """Return the wheel pip would install for ``req``, or note why there is none."""
        pin = self.pins.get(req.name, "")
        fitting = [w for w in found.wheels if w.name == req.name]
        if pin:
            fitting = [w for w in fitting if _same_version(w.version, pin)]
        if req.specifiers:
            fitting = [w for w in fitting if satisfies(w.version, req.specifiers)]
        if fitting:
            wheel = max(fitting, key=lambda w: version_key(w.version))
            found.chosen[req.name] = wheel
            return wheel
        found.missing.append(self._missing_line(found.target, req, pin, parent))
        return None

    def _missing_line(self, target: Target, req: Requirement, pin: str, parent: str) -> str:
        want = f"{req.name}=={pin}" if pin else f"{req.name}{req.specifiers}"
        why = f" (needed by {parent})" if parent else " (the appliance's own wheel, of this checkout)"
        named = [w for w in self.wheels if w.name == req.name]
        fitting = [w for w in named if w.fits(target)]
        if fitting:
            versions = ", ".join(sorted({w.version for w in fitting}))
            return f"{want}{why}: the folder has version {versions} only"
        if named:
            return (
                f"{want}{why}: {', '.join(w.path.name for w in named)} is for another Python or "
                f"platform, not CPython {target.python} on aarch64"
            )
        return f"{want}{why}"

    def stale_sources(self, wheel: Wheel) -> list[str]:
        """Return the appliance's files whose source differs from what its wheel holds."""
        differ = []
        for name, digest in sorted(read_record(wheel.path).items()):
            if not name.startswith(APPLIANCE + "/") or not digest.startswith("sha256="):
                continue
            source = self.root / name
            if not source.is_file() or _record_hash(source) != digest:
                differ.append(name)
        return differ


def read_pins(path: Path) -> dict[str, str]:
    """Return {name: version} of the exact pins (name==version) in a constraints file."""
    pins: dict[str, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return pins
    for line in lines:
        spec = line.split("#", 1)[0].split(";", 1)[0].strip()
        if "==" in spec:
            name, _, version = spec.partition("==")
            pins[normalize(name.strip())] = version.strip()
    return pins


def project_version(path: Path) -> str:
    """Return [project] version from pyproject.toml ("" when it cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    m = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.M) if project else None
    return m.group(1) if m else ""


def _same_version(a: str, b: str) -> bool:
    return version_key(a) == version_key(b)


def _record_hash(path: Path) -> str:
    digest = hashlib.sha256(path.read_bytes()).digest()
    return "sha256=" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def recipe(folder: str, target: Target | None, version: str = "") -> str:
    """Return the commands that make a complete wheelhouse for ``target`` (both when unknown)."""
    versions = [target.python] if target else [t.python for t in TARGETS.values()]
    own = f"{folder}/appliance-{version or '*'}-py3-none-any.whl[{','.join(PI_EXTRAS)}]"
    lines = [
        "Make the folder on a machine with internet, from this appliance checkout:",
        f"  pip wheel --no-deps --ignore-requires-python -w {folder} .",  # a Mac's 3.9 builds it too
    ]
    for python in versions:
        lines.append(
            f"  pip download --only-binary=:all: --python-version {python} --implementation cp "
            "--platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 "
            f'--platform manylinux_2_34_aarch64 -c scripts/constraints.txt -d {folder} "{own}"'
        )
    return "\n".join(lines)


def boot_files(found: Found) -> list[BootFile]:
    """Return the wheels as files of the boot partition's ``appliance/wheels`` folder."""
    return [BootFile(f"{WHEELS_DIR}/{w.path.name}", w.path.read_bytes()) for w in found.wheels]


def spare_for(partition_bytes: int) -> int:
    """Return the room kept free on a boot partition of this size."""
    return max(SPARE_MIN, partition_bytes * SPARE_SHARE // 100)


@dataclass(frozen=True)
class BootSpace:
    """Room on a boot partition: free now, and what our own earlier files there take."""

    free: int
    total: int
    cluster: int
    ours: int  # bytes in appliance/ and appliance/wheels/, replaced by this run


def space_of(vol: FatVolume) -> BootSpace:
    """Return the room on a boot partition, counting our earlier payload as reclaimable."""
    cluster = vol.cluster_size
    ours = 0
    for folder in (PAYLOAD_DIR, WHEELS_DIR):
        if vol.find(folder) is None:
            continue
        ours += sum(-(-e.size // cluster) * cluster for e in vol.listdir(folder) if not e.is_dir)
    return BootSpace(vol.free_clusters() * cluster, vol.clusters * cluster, cluster, ours)


def check_fits(found: Found, space: BootSpace, other_files: int) -> None:
    """Refuse wheels that would leave the boot partition without room to spare."""
    clusters = lambda n: -(-n // space.cluster) * space.cluster  # noqa: E731
    need = sum(clusters(w.size) for w in found.wheels) + other_files
    left = space.free + space.ours - need
    spare = spare_for(space.total)
    if left < spare:
        raise BundleError(
            f"the wheelhouse ({len(found.wheels)} wheels, {found.size / MB:.1f} MB) does not fit "
            f"on the boot partition with room to spare: {(space.free + space.ours) / MB:.1f} MB "
            f"free, {need / MB:.1f} MB needed and {spare / MB:.1f} MB kept free for kernel and "
            "firmware updates. Remove wheels the Pi does not need from the folder, or flash "
            "without --bundle (the Pi then installs from PyPI over its network)"
        )


def check_size_without_peek(found: Found) -> None:
    """Refuse, before writing, wheels no Raspberry Pi OS boot partition keeps room for."""
    if found.size > WITHOUT_PEEK_LIMIT:
        raise BundleError(
            f"the wheelhouse holds {found.size / MB:.0f} MB of wheels for {found.target.os_name}; "
            f"a Raspberry Pi OS boot partition (512 MB) keeps no room for more than "
            f"{WITHOUT_PEEK_LIMIT / MB:.0f} MB: remove wheels the Pi does not need"
        )


def describe(found: Found) -> str:
    """Return one report line for the wheels written."""
    return (
        f"  wrote {WHEELS_DIR}/ ({len(found.wheels)} wheels, {found.size / MB:.1f} MB: the appliance "
        f"and its dependencies for {found.target.os_name}, CPython {found.target.python} on aarch64; "
        "first boot installs from them without internet)"
    )
