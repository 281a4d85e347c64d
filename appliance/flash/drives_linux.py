"""Linux disks from `lsblk -J -b`: old (string, human sizes) and new (boolean, bytes) output.

Besides what a disk is (size, removable, transport), each disk gets what makes it unsafe
whatever --force says: eMMC soldered to the board (an ``mmcblk`` with ``boot0``/``boot1``/
``rpmb`` siblings; an SD card has none), an internal transport (``sata``, ``nvme``...: a
hot-plug port does not make a disk a card; only ``rm=1`` does), and uses lsblk's mount points
do not show: stacked devices, member signatures, active swap (see ``inuse_linux``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from appliance.flash import system
from appliance.flash.drive import SWAP, Drive
from appliance.flash.errors import CommandError, DriveListError
from appliance.flash.inuse_linux import Kernel, held_phrase, mounted_phrase, swap_phrase

# util-linux >= 2.37 (MOUNTPOINTS, PATH, SUBSYSTEMS); the short list works back to 2.2x
# (FSTYPE is as old as lsblk itself). The nesting of the JSON gives each partition's parent.
COLUMNS = "NAME,PATH,TYPE,SIZE,RM,HOTPLUG,RO,TRAN,SUBSYSTEMS,MODEL,VENDOR,LOG-SEC,MOUNTPOINTS,FSTYPE"
OLD_COLUMNS = "NAME,TYPE,SIZE,RM,HOTPLUG,RO,TRAN,MODEL,VENDOR,MOUNTPOINT,FSTYPE"
# Transports of disks built into the computer: never a card, even on a hot-plug port (an
# internal SATA bay reports hotplug=1), unless the medium itself is removable (rm=1).
INTERNAL_TRANSPORTS = ("sata", "ata", "nvme", "sas", "scsi", "fc", "iscsi")
# Devices stacked on a partition (lsblk TYPE): the partition is in use while they exist.
STACKED_TYPES = ("crypt", "lvm", "dm", "mpath", "dmraid", "linear", "md", "multipath")
# Signatures of a member of something bigger (lsblk FSTYPE), refused even when nothing holds
# them (an imported ZFS pool holds its disks without a holder; a closed LUKS volume is still
# someone's data): what it is, and its state or what releases it.
MEMBER_SIGNATURES = {
    "zfs_member": ("a ZFS pool member", "export its pool first (sudo zpool export POOL)"),
    "crypto_LUKS": ("a LUKS encrypted volume", "it is not open"),
    "LVM2_member": ("an LVM physical volume", "no volume of it is active"),
    "linux_raid_member": ("a Linux RAID member", "its array is not running"),
    "isw_raid_member": ("a firmware RAID member", "its array is not running"),
    "ddf_raid_member": ("a firmware RAID member", "its array is not running"),
    "bcache": ("a bcache device", "stop it first (echo 1 | sudo tee /sys/block/bcacheN/bcache/stop)"),
}
_EMMC_PARTS = ("boot0", "boot1", "rpmb")
_EMMC_PART = re.compile(r"^(mmcblk\d+)(boot\d+|rpmb)$")
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


def list_drives(
    *, include_loop: bool = False, data: dict | None = None, kernel: Kernel | None = None
) -> list[Drive]:
    """Return every whole disk lsblk reports (loop devices only when asked)."""
    data = run_lsblk() if data is None else data
    kernel = kernel or Kernel()
    devices = data.get("blockdevices", []) or []
    names = {str(d.get("name", "")) for d in devices}
    drives = []
    for dev in devices:
        kind = dev.get("type", "")
        if kind == "disk" or (include_loop and kind == "loop"):
            drives.append(drive_from_lsblk(dev, names, kernel))
    return drives


def drive_from_lsblk(dev: dict, names: set | None = None, kernel: Kernel | None = None) -> Drive:
    """Return a Drive from one top-level lsblk device and its children.

    ``names``: every top-level device lsblk listed (an eMMC's boot0/boot1 show there);
    ``kernel``: where holders, swap and mounts are read (the real /sys and /proc by default).
    """
    kernel = kernel or Kernel()
    name = dev.get("name", "")
    path = dev.get("path") or f"/dev/{name}"
    subsystems = str(dev.get("subsystems") or "")
    tran = str(dev.get("tran") or "").lower()
    is_mmc = "mmc" in subsystems.split(":") or name.startswith("mmcblk")
    emmc = emmc_evidence(name, names or set(), kernel) if is_mmc else ""
    model = " ".join(str(dev.get(k) or "").strip() for k in ("vendor", "model") if dev.get(k)).strip()
    children = list(_descendants(dev))
    loop = dev.get("type") == "loop"
    removable = _removable(dev, tran, is_mmc, emmc)
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
        kind="loop" if loop else "disk",
        mountpoints=sorted({m for d in [dev, *children] for m in mountpoints(d)}),
        volume_readonly=any(flag(c.get("ro")) and mountpoints(c) for c in children),
        emmc=emmc,
        in_use=in_use(dev, children, kernel, loop=loop),
    )


def _removable(dev: dict, tran: str, is_mmc: bool, emmc: str) -> bool:
    """Return True for a medium that can be taken out: rm=1, or a USB or SD card (not eMMC)."""
    if emmc:
        return False
    if flag(dev.get("rm")):
        return True
    if tran in INTERNAL_TRANSPORTS:
        return False  # hotplug=1 only says the port is hot-pluggable
    return flag(dev.get("hotplug")) or tran == "usb" or is_mmc


def emmc_evidence(name: str, names: set, kernel: Kernel) -> str:
    """Return why an mmc disk is soldered-on eMMC, or "" for an SD card."""
    whole = _EMMC_PART.match(name)
    if whole:
        return f"{name} is a hardware partition of the eMMC {whole.group(1)}"
    parts = [p for p in _EMMC_PARTS if f"{name}{p}" in names or kernel.has_block(f"{name}{p}")]
    if parts:
        return f"/dev/{name} has {_and(parts)} partitions, which only eMMC has"
    if kernel.is_emmc(name):
        return f"the kernel reports /dev/{name} as type MMC (an SD card reports SD)"
    return ""


def in_use(dev: dict, children: list[dict], kernel: Kernel, *, loop: bool = False) -> list[str]:
    """Return one phrase per use of the disk that its mount points alone do not show."""
    found = []
    explained = set()  # devices whose stack lsblk shows: the kernel's holders would repeat it
    for parent in [dev, *children]:
        pname = str(parent.get("name", ""))
        for child in parent.get("children", []) or []:
            kind = str(child.get("type") or "")
            if kind in STACKED_TYPES or kind.startswith("raid"):
                found.append(held_phrase(pname, str(child.get("name")), kind))
                explained.add(pname)
        signature = str(parent.get("fstype") or "")
        if signature in MEMBER_SIGNATURES and pname not in explained:
            what, release = MEMBER_SIGNATURES[signature]
            found.append(
                f"/dev/{pname} is {what} ({signature}): {release}; if the disk really is the "
                f"card and holds nothing you need, wipe it first: sudo wipefs -a /dev/{pname}"
            )
        if SWAP in mountpoints(parent):
            found.append(swap_phrase(pname))
        if loop:  # a loop device is an image file, not a card: mounted anywhere means in use
            found += [mounted_phrase(pname, m) for m in mountpoints(parent) if m != SWAP]
    found += kernel.uses(str(dev.get("name", "")), mounts=loop, explained=frozenset(explained))
    return list(dict.fromkeys(found))


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


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
