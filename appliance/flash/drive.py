"""What the flasher knows about one disk: the ``Drive`` record and how to name its size."""

from __future__ import annotations

from dataclasses import dataclass, field

# Where removable media are mounted; anything else mounted counts as part of the system.
MEDIA_PREFIXES = ("/Volumes/", "/media/", "/run/media/", "/mnt/")
SWAP = "[SWAP]"  # lsblk's mount point for active swap: reported as a use (in_use), not a path


def is_system_mount(mountpoint: str) -> bool:
    """Return True unless the mount point is where removable media get mounted."""
    return not mountpoint.startswith(MEDIA_PREFIXES)


@dataclass
class Drive:
    """One whole disk (or a file target), as the listing and the safety rules see it."""

    id: str  # disk2, sdb, mmcblk0, or the file path
    path: str  # /dev/disk2, /dev/sdb
    raw_path: str  # what is written: /dev/rdisk2 on macOS, the same as path on Linux
    model: str = ""
    size: int = 0
    removable: bool = False
    writable: bool = True
    block_size: int = 512
    bus: str = ""
    internal: bool = False
    virtual: bool = False
    kind: str = "disk"  # disk | sd-slot | loop | file
    system: bool = False  # holds the running system, whatever its mount points say
    mountpoints: list[str] = field(default_factory=list)  # of the disk and everything on it
    volume_readonly: bool = False  # a volume on it is mounted read-only (the medium is writable)
    emmc: str = ""  # why it is eMMC soldered to the board (Linux), "" for anything else
    in_use: list[str] = field(default_factory=list)  # uses besides media mounts, one phrase each
    target: bool = False
    why: str = ""

    @property
    def is_file(self) -> bool:
        """Return True for a plain-file target."""
        return self.kind == "file"

    def volumes(self) -> list[str]:
        """Return the card's mount points under /Volumes, /media or /mnt (not system paths)."""
        return [m for m in self.mountpoints if not is_system_mount(m)]

    def describe(self) -> str:
        """Return one line naming the disk: identifier, model, size, removable."""
        if self.kind == "file":
            state = f"{human_size(self.size)}, will be replaced" if self.size else "new"
            return f"file {self.path} ({state})"
        what = self.model or "unknown model"
        how = "removable" if self.removable else ("internal" if self.internal else "fixed")
        if self.kind == "sd-slot":
            how = "built-in SD card slot"
        return f"{self.id} ({self.path}): {what}, {human_size(self.size)}, {how}"

    def to_json(self) -> dict:
        """Return the listing's JSON object (BRIEF section 3 fields, "why" only when refused)."""
        out = {
            "id": self.id,
            "path": self.path,
            "raw_path": self.raw_path,
            "model": self.model,
            "size": self.size,
            "removable": self.removable,
            "writable": self.writable,
            "bus": self.bus,
            "kind": self.kind,
            "mountpoints": list(self.mountpoints),
            "in_use": list(self.in_use),
            "target": self.target,
        }
        if not self.target:
            out["why"] = self.why
        return out


def human_size(n: int) -> str:
    """Return a size in decimal units, as diskutil and card labels show it (15.7 GB)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
