"""Which disks may be written, and turning the user's --device into one checked target.

Rules, in order: never a virtual disk, the system disk, a disk with a mounted system path,
eMMC soldered to the board, a disk or file in use (stacked devices, member signatures, swap,
a mounted loop device or its backing file) or an internal disk (except a Mac's built-in SD
slot); never an empty reader or a locked card; nothing above the size limit unless --force.
Only the size limit can be overridden: --force is for big cards, never for these.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable

from appliance.flash.drive import SWAP, Drive, human_size, is_system_mount
from appliance.flash.errors import LockedCardError, NoTargetError, UnsafeTargetError
from appliance.flash.inuse_linux import Kernel

SIZE_LIMIT = 128 * 1024**3  # 137 GB: a 128 GB card passes, a 256 GB disk needs --force
LOCKED_WHY = "read-only: the card's lock switch is on (slide it up, towards the contacts)"


def refusal(drive: Drive, *, force: bool = False, size_limit: int = SIZE_LIMIT) -> str:
    """Return why the drive may not be written, or "" when it may."""
    system_mounts = [m for m in drive.mountpoints if is_system_mount(m) and m != SWAP]  # swap: in_use
    if drive.bus == "Disk Image":
        return "a mounted disk image (.dmg), not a card"
    if drive.virtual:
        return "virtual disk (an APFS container or a disk image), not a card"
    if drive.system:
        return "system disk: the running system is on it"
    if system_mounts and drive.kind != "loop":  # a loop's mounts are uses (in_use), anywhere
        return "holds mounted system path(s): " + ", ".join(system_mounts)
    if drive.emmc:
        return emmc_why(drive)
    if drive.in_use:
        return in_use_why(drive)
    if drive.internal and drive.kind not in ("sd-slot", "loop"):
        return internal_why(drive)
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


def emmc_why(drive: Drive) -> str:
    """Return the refusal of eMMC soldered to this computer's board."""
    return (
        f"eMMC soldered to this board: {drive.emmc}; writing it would erase this computer's own "
        "storage, not a card. Put the SD card in a USB card reader (or the card slot) and choose "
        "that disk"
    )


def in_use_why(drive: Drive) -> str:
    """Return the refusal of a disk, loop device or file that something is using."""
    return (
        "in use, or part of something bigger: " + "; ".join(drive.in_use) + ". Writing it would "
        "destroy what is on it: release it as shown, or choose another --device"
    )


def internal_why(drive: Drive) -> str:
    """Return the refusal of a disk built into the computer."""
    bus = f" ({drive.bus})" if drive.bus else ""
    return (
        f"internal disk{bus}, not removable: it is part of this computer, not a card (a card "
        "shows as removable in a card slot or a USB reader)"
    )


def is_time_machine(mountpoint: str) -> bool:
    """Return True for a mount point of a Time Machine destination (its backups or snapshots)."""
    return ".timemachine" in mountpoint or "Backups.backupdb" in mountpoint or "TimeMachine" in mountpoint


def judge(drives: list[Drive], *, force: bool = False, size_limit: int = SIZE_LIMIT) -> list[Drive]:
    """Set target and why on every drive and return the list."""
    for drive in drives:
        drive.why = refusal(drive, force=force, size_limit=size_limit)
        drive.target = not drive.why
    return drives


def file_target(path: str, kernel: Kernel | None = None) -> Drive:
    """Return a Drive for a plain-file target (created if missing), judged: a file that is
    active swap or backs a loop device in use is refused (``kernel``: where that is read)."""
    exists = os.path.exists(path)
    size = os.stat(path).st_size if exists else 0
    in_use = (kernel or Kernel()).file_uses(path) if exists else []
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
        in_use=in_use,
        target=not in_use,
        why=in_use_why_file(in_use) if in_use else "",
    )


def in_use_why_file(uses: list[str]) -> str:
    """Return the refusal of a file target that backs something in use."""
    return (
        "in use: " + "; ".join(uses) + ". Writing it would corrupt what is using it: release it "
        "as shown, or choose another file"
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
            return accepted(drive)
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


def accepted(drive: Drive) -> Drive:
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
            return accepted(file_target(device))
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
