"""Turning the command line into an image and a checked target, before anything is written."""

from __future__ import annotations

import os

from appliance.flash import download, readonly, safety, source, system
from appliance.flash.drive import Drive
from appliance.flash.drives import list_drives
from appliance.flash.errors import ImageError, WriteRefusedError

_KIND_BY_SUFFIX = (
    (".xz", "xz"),
    (".gz", "gz"),
    (".zip", "zip"),
)


def listing(force: bool = False, include_loop: bool = False) -> tuple[str, list[Drive]]:
    """Return the platform and every whole physical disk, judged."""
    platform = system.platform_name()
    drives = list_drives(platform, include_loop=include_loop)
    return platform, safety.judge(drives, force=force)


def wants_loop(device: str | None) -> bool:
    """Return True when --device names a loop device (never offered, only accepted by name)."""
    if not device:
        return False
    return os.path.basename(os.path.realpath(device) if "/" in device else device).startswith("loop")


def target(device: str | None, force: bool) -> tuple[str, Drive]:
    """Return the platform and the checked target that --device names (or the only card)."""
    if device and safety.is_file_target(device):
        return system.platform_name(), safety.accepted(safety.file_target(device))
    platform, drives = listing(force, include_loop=wants_loop(device))
    return platform, safety.choose(drives, device)


def image(image_path: str | None, os_name: str | None) -> tuple[source.Image, download.OsImage | None]:
    """Return the image to write; for --os, the list entry to download (not downloaded yet)."""
    if bool(image_path) == bool(os_name):
        raise ImageError("Give exactly one image source: --image PATH or --os NAME.")
    if image_path:
        return source.inspect(image_path), None
    entry = download.find(download.fetch_list(), os_name or "")
    path = os.path.join(download.cache_dir(), entry.filename)
    kind = next((k for s, k in _KIND_BY_SUFFIX if entry.filename.lower().endswith(s)), "raw")
    planned = source.Image(path, kind, entry.extract_size or None)
    planned.expected_sha256 = entry.extract_sha256
    return planned, entry


def fix_readonly_note(target: Drive, platform: str) -> str:
    """Return a note when --fix-readonly does not apply; refuse it when it cannot work."""
    if platform != "darwin" or target.is_file:
        return "--fix-readonly only applies to cards on macOS; ignored."
    if not readonly.mac_volumes(target):
        raise WriteRefusedError(
            f"--fix-readonly shares the card's volume, but no volume of {target.id} is mounted: "
            "take the card out and put it back in (macOS mounts it), then run again."
        )
    return ""
