"""macOS disks from `diskutil ... -plist`, parsed with plistlib.

`diskutil list external` alone misses the built-in SD slot (it shows as internal, physical),
so every physical whole disk is listed and judged from its own `diskutil info`.
"""

from __future__ import annotations

import plistlib
import re
from collections.abc import Iterable

from appliance.flash import system
from appliance.flash.drive import Drive
from appliance.flash.errors import DriveListError

_WHOLE = re.compile(r"^(disk\d+)")
# Words that mark a card reader in MediaName / IORegistryEntryName.
_SD_WORDS = ("sd card", "sdxc", "sdhc", "card reader", "sd reader")


def diskutil_plist(*args: str) -> dict:
    """Run `diskutil <args>` and return its plist output as a dict."""
    done = system.run(["diskutil", *args])
    try:
        return plistlib.loads(done.stdout)
    except Exception as exc:  # plistlib raises several unrelated types on bad input
        raise DriveListError(
            f"`diskutil {' '.join(args)}` printed something that is not a plist ({exc}); is this macOS?"
        ) from None


def whole_disk_of(identifier: str) -> str:
    """Return the whole disk of a BSD name: disk0s2 -> disk0."""
    m = _WHOLE.match(identifier.replace("/dev/", "").lstrip("r"))
    return m.group(1) if m else identifier


def list_drives() -> list[Drive]:
    """Return every physical whole disk, each described from its own `diskutil info`."""
    physical = diskutil_plist("list", "-plist", "physical")
    everything = diskutil_plist("list", "-plist")
    mounts = mounts_by_whole_disk(everything, physical)
    boot = boot_disks()
    drives = []
    for ident in physical.get("WholeDisks", []):
        info = diskutil_plist("info", "-plist", ident)
        drive = drive_from_info(info, sorted(mounts.get(ident, set())))
        drive.system = ident in boot
        drive.volume_readonly = _volume_readonly(info, drive.mountpoints, physical, ident)
        drives.append(drive)
    return drives


def drive_from_info(info: dict, mountpoints: list[str]) -> Drive:
    """Return a Drive from a whole disk's `diskutil info -plist`."""
    ident = info.get("DeviceIdentifier", "")
    internal = bool(info.get("Internal", True))  # unknown counts as internal: refused
    removable = bool(info.get("RemovableMedia") or info.get("Removable") or info.get("Ejectable"))
    drive = Drive(
        id=ident,
        path=info.get("DeviceNode") or f"/dev/{ident}",
        raw_path=f"/dev/r{ident}",
        model=(info.get("MediaName") or info.get("IORegistryEntryName") or "").strip(),
        size=int(info.get("Size") or info.get("TotalSize") or 0),
        removable=removable,
        writable=bool(info.get("WritableMedia", info.get("Writable", False))),
        block_size=int(info.get("DeviceBlockSize") or 512),
        bus=info.get("BusProtocol", ""),
        internal=internal,
        virtual=info.get("VirtualOrPhysical", "Physical") != "Physical",
        mountpoints=list(mountpoints),
    )
    if internal and is_sd_slot(info):
        drive.kind = "sd-slot"
    return drive


def is_sd_slot(info: dict) -> bool:
    """Return True for a Mac's built-in SD card slot (internal, but ejectable media)."""
    names = " ".join(str(info.get(k, "")) for k in ("MediaName", "IORegistryEntryName")).lower()
    ejectable = bool(info.get("RemovableMedia") or info.get("Ejectable"))
    by_name = any(word in names for word in _SD_WORDS)
    by_bus = info.get("BusProtocol") in ("Secure Digital", "USB")
    # Both: a USB bus alone is not enough for an internal disk, and a name alone could lie.
    return ejectable and by_bus and (by_name or info.get("BusProtocol") == "Secure Digital")


def mounts_by_whole_disk(*listings: dict) -> dict[str, set[str]]:
    """Return every mount point on each whole disk, following APFS containers to their stores."""
    mounts: dict[str, set[str]] = {}
    for listing in listings:
        for entry in listing.get("AllDisksAndPartitions", []):
            ident = entry.get("DeviceIdentifier", "")
            points = set(_entry_mounts(entry))
            stores = [s.get("DeviceIdentifier", "") for s in entry.get("APFSPhysicalStores", [])]
            # An APFS container is synthesized: its volumes live on its physical stores.
            owners = [whole_disk_of(s) for s in stores if s] or [ident]
            for owner in owners:
                mounts.setdefault(owner, set()).update(points)
    return mounts


def _entry_mounts(entry: dict) -> Iterable[str]:
    """Yield the mount points of one listing entry, its partitions, volumes and snapshots."""
    for item in [entry, *entry.get("Partitions", []), *entry.get("APFSVolumes", [])]:
        if item.get("MountPoint"):
            yield item["MountPoint"]
        for snap in item.get("MountedSnapshots", []):
            if snap.get("SnapshotMountPoint"):
                yield snap["SnapshotMountPoint"]


def boot_disks() -> set[str]:
    """Return the whole disks that hold the running system, from `diskutil info -plist /`."""
    try:
        info = diskutil_plist("info", "-plist", "/")
    except Exception:
        return set()  # the mount-point rule still catches the system disk
    found = {whole_disk_of(info.get("ParentWholeDisk") or info.get("DeviceIdentifier", ""))}
    for store in info.get("APFSPhysicalStores", []):
        found.add(whole_disk_of(store.get("APFSPhysicalStore", "")))
    return {d for d in found if d}


def _volume_readonly(info: dict, mountpoints: list[str], physical: dict, ident: str) -> bool:
    """Return True when the medium is writable but a volume on it is mounted read-only."""
    if not info.get("WritableMedia", False) or not mountpoints:
        return False
    if info.get("MountPoint"):  # a card without a partition table: the disk is the volume
        return not info.get("WritableVolume", True)
    for part in _partitions(physical, ident):
        if not part.get("MountPoint"):
            continue
        try:
            pinfo = diskutil_plist("info", "-plist", part["DeviceIdentifier"])
        except Exception:
            continue  # only used for a friendlier message
        if not pinfo.get("WritableVolume", True):
            return True
    return False


def _partitions(listing: dict, ident: str) -> list[dict]:
    """Return the partition entries of one whole disk in a `diskutil list` plist."""
    for entry in listing.get("AllDisksAndPartitions", []):
        if entry.get("DeviceIdentifier") == ident:
            return list(entry.get("Partitions", []))
    return []
