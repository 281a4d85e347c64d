"""What the Linux kernel says is in use right now: holders, mounts, swap, loop backing files.

lsblk says what a disk is; this says who uses it, including what lsblk shows poorly or not at
all: a device-mapper, LVM, LUKS or md device stacked on a partition (sysfs ``holders``), swap
that lsblk only calls "[SWAP]", and the loop devices whose backing file is a file target.
Everything is read from sysfs and procfs, not from commands, so a test can point ``Kernel``
at a folder laid out like /sys and /proc. Each finding is one phrase that names the device,
what uses it and the command that releases it.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

_OCTAL = re.compile(r"\\([0-7]{3})")


def unescape(field: str) -> str:
    """Return a path from /proc/self/mountinfo or /proc/swaps (spaces come as \\040)."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


@dataclass(frozen=True)
class Kernel:
    """The kernel's view of block devices, read under ``sys_root`` and ``proc_root``."""

    sys_root: str = "/sys"
    proc_root: str = "/proc"

    def _text(self, *parts: str) -> str:
        try:
            with open(os.path.join(*parts), encoding="utf-8", errors="replace") as f:
                return f.read().strip()
        except OSError:
            return ""

    def _block(self, *parts: str) -> str:
        return os.path.join(self.sys_root, "block", *parts)

    def has_block(self, name: str) -> bool:
        """Return True when /sys/block/NAME exists (a whole disk the kernel knows)."""
        return os.path.isdir(self._block(name))

    def partitions(self, name: str) -> list[str]:
        """Return the partitions of a whole disk (sysfs subfolders holding a ``partition`` file)."""
        try:
            entries = sorted(os.listdir(self._block(name)))
        except OSError:
            return []
        return [e for e in entries if os.path.isfile(self._block(name, e, "partition"))]

    def numbers(self, name: str) -> dict[str, str]:
        """Return {device: "major:minor"} for a whole disk and its partitions."""
        out = {name: self._text(self._block(name, "dev"))}
        out.update({part: self._text(self._block(name, part, "dev")) for part in self.partitions(name)})
        return out

    def holders(self, name: str) -> dict[str, list[tuple[str, str]]]:
        """Return {device: [(holder, kind)]} for the disk and its partitions that something
        holds; kind is "crypt", "lvm", "raid" or "dm" (from the holder's dm UUID or name)."""
        out = {}
        for dev in [name, *self.partitions(name)]:
            folder = self._block(name, "holders") if dev == name else self._block(name, dev, "holders")
            try:
                held_by = sorted(os.listdir(folder))
            except OSError:
                continue
            if held_by:
                out[dev] = [self._holder(h) for h in held_by]
        return out

    def _holder(self, holder: str) -> tuple[str, str]:
        """Return (name, kind) of a holder: a dm device by its mapper name, an md array as is."""
        if holder.startswith("md"):
            return holder, "raid"
        name = self._text(self._block(holder, "dm", "name"))
        uuid = self._text(self._block(holder, "dm", "uuid"))
        kind = "crypt" if uuid.startswith("CRYPT-") else "lvm" if uuid.startswith("LVM-") else "dm"
        return (name or holder), kind

    def is_emmc(self, name: str) -> bool:
        """Return True when the kernel reports an MMC card of type "MMC" (eMMC), not "SD"."""
        return self._text(self._block(name, "device", "type")).upper() == "MMC"

    def mounts(self) -> list[tuple[str, str, str]]:
        """Return (major:minor, source, mount point) of every mount, from mountinfo."""
        out = []
        for line in self._text(self.proc_root, "self", "mountinfo").splitlines():
            fields = line.split()
            if "-" not in fields[6:]:
                continue
            dash = fields.index("-", 6)
            source = unescape(fields[dash + 2]) if len(fields) > dash + 2 else ""
            out.append((fields[2], source, unescape(fields[4])))
        return out

    def swaps(self) -> list[str]:
        """Return the files and devices in use as swap (/proc/swaps)."""
        lines = self._text(self.proc_root, "swaps").splitlines()[1:]
        return [unescape(line.split()[0]) for line in lines if line.split()]

    def loops(self) -> dict[str, str]:
        """Return {loop device: backing file} for every attached loop device."""
        try:
            names = sorted(n for n in os.listdir(self._block()) if n.startswith("loop"))
        except OSError:
            return {}
        out = {}
        for name in names:
            backing = self._text(self._block(name, "loop", "backing_file"))
            if backing:
                out[name] = backing[: -len(" (deleted)")] if backing.endswith(" (deleted)") else backing
        return out

    def uses(self, name: str, *, mounts: bool = True, explained: frozenset = frozenset()) -> list[str]:
        """Return one phrase per use of a block device or its partitions: mounted, swap, held.

        ``mounts``: report mounts too (lsblk reports a disk's own); ``explained``: devices
        whose holders a caller already described (from lsblk's view of the same stack).
        """
        numbers = self.numbers(name)
        found = []
        if mounts:
            for number, source, point in self.mounts():
                for dev, devnum in numbers.items():
                    if (devnum and number == devnum) or source == f"/dev/{dev}":
                        found.append(mounted_phrase(dev, point))
        swaps = set(self.swaps())
        found += [swap_phrase(dev) for dev in numbers if f"/dev/{dev}" in swaps]
        for dev, held_by in self.holders(name).items():
            if dev not in explained:
                found += [held_phrase(dev, holder, kind) for holder, kind in held_by]
        return list(dict.fromkeys(found))

    def file_uses(self, path: str) -> list[str]:
        """Return one phrase per use of a file: active swap, or backing a loop device in use."""
        found = [
            f"{path} is active swap (release it first: sudo swapoff {path})"
            for swap in self.swaps()
            if _same(swap, path)
        ]
        for loop, backing in self.loops().items():
            if _same(backing, path):
                found += [
                    f"{path} backs /dev/{loop}, and {use} (then detach it: sudo losetup -d /dev/{loop})"
                    for use in self.uses(loop)
                ]
        return found


def mounted_phrase(dev: str, point: str) -> str:
    """Return the phrase for a mounted device."""
    return f"/dev/{dev} is mounted at {point} (unmount it first: sudo umount {point})"


def swap_phrase(dev: str) -> str:
    """Return the phrase for a device in use as swap."""
    return f"/dev/{dev} is active swap (release it first: sudo swapoff /dev/{dev})"


def held_phrase(dev: str, holder: str, kind: str) -> str:
    """Return the phrase for a device that another block device sits on, with its release.

    ``kind``: "crypt" (an open LUKS volume), "lvm", "raid" (an md array) or anything else
    device-mapper (lsblk's TYPE, or what the holder's dm UUID says).
    """
    if kind == "crypt":
        return f"/dev/{dev} is an open LUKS volume, {holder} (close it: sudo cryptsetup close {holder})"
    if kind == "lvm":
        group = lvm_group(holder)
        return (
            f"/dev/{dev} is an LVM physical volume in use by {holder} "
            f"(deactivate it: sudo vgchange -an {group})"
        )
    if kind.startswith("raid") or kind == "md":
        return (
            f"/dev/{dev} is a member of the running RAID array /dev/{holder} "
            f"(stop it: sudo mdadm --stop /dev/{holder})"
        )
    return f"/dev/{dev} is held by {holder} ({kind}) (remove it: sudo dmsetup remove {holder})"


def lvm_group(mapper_name: str) -> str:
    """Return the volume group of an LVM mapper name ("vg--a-lv" -> "vg-a"; "-" is doubled)."""
    m = re.match(r"^((?:[^-]|--)+)-(?!-)", mapper_name)
    return m.group(1).replace("--", "-") if m else mapper_name


def _same(a: str, b: str) -> bool:
    """Return True when two paths name the same file (False when either cannot be read)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
