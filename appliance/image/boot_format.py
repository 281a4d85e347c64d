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
# Raspberry Pi Imager's OS list says per image how it wants to be customized.
INIT_FORMATS = {"systemd": FIRSTRUN, "cloudinit": CLOUD_INIT, "cloudinit-rpi": CLOUD_INIT}


def listed(init_format: str) -> str:
    """Return our format for the OS list's ``init_format`` ("" when the list gave none)."""
    if not init_format:
        return ""
    if init_format not in INIT_FORMATS:
        known = ", ".join(sorted(INIT_FORMATS))
        raise ImageError(
            f'the OS list says this image is customized by "{init_format}", which this '
            f"version does not know (it knows {known}); update the appliance checkout "
            "(git pull), or pass --image with a Raspberry Pi OS image and --format"
        )
    return INIT_FORMATS[init_format]


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


def choose(vol: FatVolume, forced: str = "auto", init_format: str = "") -> tuple[str, str]:
    """Return the format to write: ``forced`` when not "auto", else the OS list's
    ``init_format`` for the image, else the one the boot partition's files suggest."""
    found, why = detect(vol)
    if forced in ("", "auto") and init_format:
        return listed(init_format), f'the OS list gives init_format "{init_format}" for this image'
    if forced in ("", "auto"):
        return found, why
    if forced not in (FIRSTRUN, CLOUD_INIT):
        raise OptionError(f'--format must be auto, {FIRSTRUN} or {CLOUD_INIT}, not "{forced}"')
    note = "as detected" if forced == found else f"forced by --format; detected {found}: {why}"
    return forced, note
