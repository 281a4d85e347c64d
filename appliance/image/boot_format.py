"""Tell which first-boot format an image wants, from the files in its boot partition.

Raspberry Pi OS Bookworm (and the first Trixie release) run ``firstrun.sh`` from the kernel
command line; later Trixie images ship cloud-init's NoCloud seed files (``user-data``,
``meta-data``, ``network-config``) in the boot partition and read them at first boot.
"""

from __future__ import annotations

from .errors import ImageError, OptionError
from .fat import FatVolume

FIRSTRUN, CLOUD_INIT = "firstrun", "cloud-init"
SEED_FILES = ("user-data", "meta-data", "network-config")


def detect(vol: FatVolume) -> tuple[str, str]:
    """Return (format, why) for the boot partition ``vol``."""
    if vol.find("cmdline.txt") is None:
        raise ImageError(
            "the boot partition has no cmdline.txt: this is not a Raspberry Pi OS "
            "image (or its first partition is not the boot partition)"
        )
    seeds = [name for name in SEED_FILES if vol.find(name) is not None]
    if seeds:
        return CLOUD_INIT, f"the boot partition holds cloud-init seed files ({', '.join(seeds)})"
    return FIRSTRUN, "the boot partition holds no cloud-init seed files (Bookworm style)"


def choose(vol: FatVolume, forced: str = "auto") -> tuple[str, str]:
    """Return the format to write: the detected one, or ``forced`` when not "auto"."""
    found, why = detect(vol)
    if forced in ("", "auto"):
        return found, why
    if forced not in (FIRSTRUN, CLOUD_INIT):
        raise OptionError(f'--format must be auto, {FIRSTRUN} or {CLOUD_INIT}, not "{forced}"')
    note = "as detected" if forced == found else f"forced by --format; detected {found}: {why}"
    return forced, note
