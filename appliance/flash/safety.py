"""Which disks may be written, and turning the user's --device into one checked target.

Rules, in order: never a virtual disk, the system disk, a disk with a mounted system path or
an internal disk (except a Mac's built-in SD slot); never an empty reader or a locked card;
nothing above the size limit unless --force. Only the size limit can be overridden.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable

from appliance.flash.drive import Drive, human_size, is_system_mount
from appliance.flash.errors import LockedCardError, NoTargetError, UnsafeTargetError

SIZE_LIMIT = 128 * 1024**3  # 137 GB: a 128 GB card passes, a 256 GB disk needs --force
LOCKED_WHY = "read-only: the card's lock switch is on (slide it up, towards the contacts)"


def refusal(drive: Drive, *, force: bool = False, size_limit: int = SIZE_LIMIT) -> str:
    """Return why the drive may not be written, or "" when it may."""
    system_mounts = [m for m in drive.mountpoints if is_system_mount(m)]
    if drive.bus == "Disk Image":
        return "a mounted disk image (.dmg), not a card"
    if drive.virtual:
        return "virtual disk (an APFS container or a disk image), not a card"
    if drive.system:
        return "system disk: the running system is on it"
    if system_mounts:
        return "holds mounted system path(s): " + ", ".join(system_mounts)
    if drive.internal and drive.kind not in ("sd-slot", "loop"):
        return "internal disk, not removable"
    backups = [m for m in drive.mountpoints if is_time_machine(m)]
    if backups:
        return "a Time Machine backup disk (" + ", ".join(backups) + ")"
    if drive.size <= 0:
        return "no medium (an empty card reader?)"
    if not drive.writable:
        return LOCKED_WHY
    if drive.size > size_limit and not force:
        return (
            f"larger than {size_limit / 1024**3:.0f} GiB ({human_size(drive.size)}), bigger than "
            "any SD card for a Pi: add --force if this really is the card"
        )
    return ""


def is_time_machine(mountpoint: str) -> bool:
    """Return True for a mount point of a Time Machine destination (its backups or snapshots)."""
    return ".timemachine" in mountpoint or "Backups.backupdb" in mountpoint or "TimeMachine" in mountpoint


def judge(drives: list[Drive], *, force: bool = False, size_limit: int = SIZE_LIMIT) -> list[Drive]:
    """Set target and why on every drive and return the list."""
    for drive in drives:
        drive.why = refusal(drive, force=force, size_limit=size_limit)
        drive.target = not drive.why
    return drives


def file_target(path: str) -> Drive:
    """Return a Drive for a plain-file target (created if missing)."""
    size = os.stat(path).st_size if os.path.exists(path) else 0
    return Drive(
        id=path,
        path=path,
        raw_path=path,
        model="file",
        size=size,
        removable=False,
        writable=True,
        block_size=1,
        kind="file",
        target=True,
    )


def is_file_target(spec: str) -> bool:
    """Return True when --device is a path to a regular file, or to a new file outside /dev."""
    if "/" not in spec:
        return False  # a bare name (disk2, sdb) always means a disk
    real = os.path.realpath(spec)
    if os.path.exists(real):
        return stat.S_ISREG(os.stat(real).st_mode)
    return not real.startswith("/dev/") and os.path.isdir(os.path.dirname(real))


def _names(spec: str) -> set:
    """Return the names --device may match: as given, resolved, and the bare BSD/kernel name."""
    real = os.path.realpath(spec) if spec.startswith("/") else spec
    base = os.path.basename(real)
    if base.startswith("rdisk"):
        base = base[1:]  # the raw node of the same disk
    return {spec, real, base}


def _partition_of(drive: Drive, name: str) -> bool:
    """Return True when name is a partition of drive (disk2s1, sdb1, mmcblk0p1)."""
    suffix = r"(?:s\d+)+|p\d+" if drive.id[-1:].isdigit() else r"\d+"
    return re.fullmatch(re.escape(drive.id) + "(?:" + suffix + ")", name) is not None


def resolve_device(spec: str, drives: list[Drive]) -> Drive:
    """Return the listed, judged whole disk that --device names; refuse anything else."""
    wanted = _names(spec)
    for drive in drives:
        if wanted & {drive.id, drive.path, drive.raw_path}:
            return _accepted(drive)
    for drive in drives:
        if any(_partition_of(drive, w) for w in wanted):
            raise UnsafeTargetError(
                f"{spec} is a partition of {drive.id}: give the whole disk "
                f"(--device {drive.id}); the whole card is written."
            )
    raise UnsafeTargetError(
        f"{spec} is not a whole physical disk of this machine, so it will not be written. "
        "Run `appliance flash --list` to see the disks and give one of their identifiers."
    )


def _accepted(drive: Drive) -> Drive:
    """Return the drive if it may be written, else raise the matching error."""
    if drive.target:
        return drive
    if drive.why == LOCKED_WHY:
        raise LockedCardError(locked_message(drive))
    raise UnsafeTargetError(f"Refusing to write {drive.describe()}: {drive.why}.")


def locked_message(drive: Drive) -> str:
    """Return what to do about a card whose lock switch is on."""
    return (
        f"The card in {drive.id} ({drive.model or 'card reader'}) is locked: its lock switch is "
        "down, so it can only be read. Take the card out, slide the small switch on its left "
        "side up (towards the contacts), put it back and run the command again."
    )


def choose(
    drives: list[Drive], device: str | None, *, file_ok: Callable[[str], bool] = is_file_target
) -> Drive:
    """Return the target: the file or disk --device names, or the only candidate disk."""
    if device:
        if file_ok(device):
            return file_target(device)
        return resolve_device(device, drives)
    candidates = [d for d in drives if d.target and d.kind != "loop"]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        locked = [d for d in drives if d.why == LOCKED_WHY]
        if len(locked) == 1:
            raise LockedCardError(locked_message(locked[0]))
        raise NoTargetError(
            "No SD card found: insert the card (or its USB reader) and run again. "
            "`appliance flash --list` shows every disk and why it may not be written."
        )
    names = "\n".join(f"  {d.describe()}" for d in candidates)
    raise NoTargetError(f"More than one disk could be the card:\n{names}\nChoose one with --device ID.")


def check_fits(drive: Drive, image_size: int | None) -> None:
    """Refuse an image that is larger than the disk (when both sizes are known)."""
    if drive.is_file or not image_size or not drive.size:
        return
    if image_size > drive.size:
        raise UnsafeTargetError(
            f"The image ({human_size(image_size)}) does not fit on {drive.id} "
            f"({human_size(drive.size)}): use a bigger card."
        )


def check_not_the_image(drive: Drive, image_path: str) -> None:
    """Refuse a file target that is the image being written (it would be destroyed)."""
    if drive.is_file and os.path.exists(drive.path) and os.path.samefile(drive.path, image_path):
        raise UnsafeTargetError(
            f"The target {drive.path} is the image file itself: writing it would destroy the "
            "image. Choose another --device (a card, or a new file name)."
        )
