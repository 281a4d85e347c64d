"""The appliance's own files on the boot partition, in its ``appliance/`` folder.

The folder holds the config, the secrets (under the names the config reads them by in
/etc/appliance), the appliance's source as a tarball (installed by scripts/install-on-pi,
which fetches the Python dependencies from PyPI over the Pi's network) and firstboot.sh.
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .appconfig import PI_CONFIG_NAME
from .errors import OptionError

PAYLOAD_DIR = "appliance"
BUNDLE_NAME = "appliance-src.tar.gz"
FIRSTBOOT = "firstboot.sh"
# What the Pi needs to install the package and its units; tests, docs and caches stay home.
BUNDLE_PATHS = (
    "pyproject.toml",
    "README.md",
    "LICENSE",
    "appliance",
    "scripts/install-on-pi",
    "scripts/constraints.txt",  # the exact versions install-on-pi installs
    "systemd",
)
MOVED_NOTE = "moved to /etc/appliance at first boot"
SECRET_NOTE = "secret: moved to /etc/appliance (mode 0600) and wiped from the card at first boot"
_SKIP_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache"}


@dataclass
class BootFile:
    """A file to write on the boot partition."""

    path: str
    data: bytes
    secret: bool = False  # holds secret material: never printed
    note: str = ""  # what happens to it at first boot, for the report


def source_root() -> Path:
    """Return the appliance checkout this code runs from (templates and source to install)."""
    root = Path(__file__).resolve().parents[2]
    needed = ["pyproject.toml", "scripts/install-on-pi", "systemd", "image/firstrun.sh"]
    missing = [n for n in needed if not (root / n).exists()]
    if missing:
        raise OptionError(
            f"image customization needs the appliance's source checkout "
            f"(missing in {root}: {', '.join(missing)}); run it from a git clone"
        )
    return root


def template(root: Path, name: str) -> bytes:
    """Return a template file from ``image/``."""
    return (root / "image" / name).read_bytes()


def _files(root: Path) -> Iterator[Path]:
    for rel in BUNDLE_PATHS:
        path = root / rel
        if path.is_file():
            yield path
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = sorted(
                    d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")
                )
                for name in sorted(filenames):
                    if not name.endswith((".pyc", ".pyo")):
                        yield Path(dirpath) / name


def source_bundle(root: Path) -> bytes:
    """Return a reproducible .tar.gz of the appliance's source (same tree, same bytes)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in _files(root):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size, info.mtime = len(data), 0
            info.mode = 0o755 if os.access(path, os.X_OK) else 0o644
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def payload(
    root: Path, config_text: bytes, files_for_etc: dict, public: Iterable[str] = ()
) -> list[BootFile]:
    """Return the files of the ``appliance/`` folder; all but ``public`` ones are secret."""
    files = [BootFile(f"{PAYLOAD_DIR}/{PI_CONFIG_NAME}", config_text, False, MOVED_NOTE)]
    files += [
        BootFile(
            f"{PAYLOAD_DIR}/{name}",
            data,
            name not in public,
            SECRET_NOTE if name not in public else MOVED_NOTE,
        )
        for name, data in sorted(files_for_etc.items())
    ]
    files.append(BootFile(f"{PAYLOAD_DIR}/{BUNDLE_NAME}", source_bundle(root)))
    files.append(BootFile(f"{PAYLOAD_DIR}/{FIRSTBOOT}", template(root, FIRSTBOOT)))
    return files
