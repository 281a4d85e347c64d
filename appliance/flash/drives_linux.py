"""Linux disks from `lsblk -J -b`: old (string, human sizes) and new (boolean, bytes) output."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from appliance.flash import system
from appliance.flash.drive import Drive
from appliance.flash.errors import CommandError, DriveListError

# util-linux >= 2.37 (MOUNTPOINTS, PATH, SUBSYSTEMS); the short list works back to 2.2x.
COLUMNS = "NAME,PATH,TYPE,SIZE,RM,HOTPLUG,RO,TRAN,SUBSYSTEMS,MODEL,VENDOR,LOG-SEC,MOUNTPOINTS"
OLD_COLUMNS = "NAME,TYPE,SIZE,RM,HOTPLUG,RO,TRAN,MODEL,VENDOR,MOUNTPOINT"
_UNITS = {"": 1, "B": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}


def run_lsblk() -> dict:
    """Run lsblk (new columns first, the old set on older util-linux) and return its JSON."""
    try:
        done = system.run(["lsblk", "-J", "-b", "-o", COLUMNS])
    except CommandError:
        done = system.run(["lsblk", "-J", "-b", "-o", OLD_COLUMNS])
    try:
        return json.loads(done.stdout)
    except ValueError as exc:
        raise DriveListError(f"lsblk printed something that is not JSON ({exc}).") from None


def list_drives(*, include_loop: bool = False, data: dict | None = None) -> list[Drive]:
    """Return every whole disk lsblk reports (loop devices only when asked)."""
    data = run_lsblk() if data is None else data
    drives = []
    for dev in data.get("blockdevices", []):
        kind = dev.get("type", "")
        if kind == "disk" or (include_loop and kind == "loop"):
            drives.append(drive_from_lsblk(dev))
    return drives


def drive_from_lsblk(dev: dict) -> Drive:
    """Return a Drive from one top-level lsblk device and its children."""
    name = dev.get("name", "")
    path = dev.get("path") or f"/dev/{name}"
    subsystems = str(dev.get("subsystems") or "")
    tran = str(dev.get("tran") or "")
    is_mmc = "mmc" in subsystems.split(":") or name.startswith("mmcblk")
    removable = flag(dev.get("rm")) or flag(dev.get("hotplug")) or tran == "usb" or is_mmc
    model = " ".join(str(dev.get(k) or "").strip() for k in ("vendor", "model") if dev.get(k)).strip()
    children = list(_descendants(dev))
    return Drive(
        id=name,
        path=path,
        raw_path=path,
        model=model,
        size=parse_size(dev.get("size")),
        removable=removable,
        writable=not flag(dev.get("ro")),
        block_size=int(dev.get("log-sec") or 512),
        bus=tran or ("mmc" if is_mmc else ""),
        internal=not removable,
        kind="loop" if dev.get("type") == "loop" else "disk",
        mountpoints=sorted({m for d in [dev, *children] for m in mountpoints(d)}),
        volume_readonly=any(flag(c.get("ro")) and mountpoints(c) for c in children),
    )


def flag(value: Any) -> bool:
    """Return an lsblk boolean: true/false in new output, "1"/"0" in old."""
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)


def parse_size(value: Any) -> int:
    """Return bytes from an lsblk size: an int with -b, or "14.3G" from old lsblk."""
    if value is None:
        return 0
    if isinstance(value, (int, float)):
        return int(value)
    m = re.match(r"^\s*([\d.]+)\s*([BKMGTP]?)", str(value).upper())
    if not m:
        return 0
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def mountpoints(dev: dict) -> list[str]:
    """Return a device's mount points from "mountpoints" (list) or "mountpoint" (string)."""
    points = dev.get("mountpoints")
    if points is None:
        points = [dev.get("mountpoint")]
    return [p for p in points if p]


def _descendants(dev: dict) -> Iterable[dict]:
    """Yield partitions and what sits on them (LVM, dm-crypt), depth first."""
    for child in dev.get("children", []) or []:
        yield child
        yield from _descendants(child)
