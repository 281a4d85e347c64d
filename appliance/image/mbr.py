"""Find the FAT boot partition of a disk image from its MBR partition table."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .blockdev import BlockDevice
from .errors import PartitionError

SECTOR = 512
FAT_TYPES = {0x01, 0x04, 0x06, 0x0B, 0x0C, 0x0E}  # FAT12, FAT16 (<32M, >32M, LBA), FAT32 (CHS, LBA)
GPT_PROTECTIVE = 0xEE


@dataclass(frozen=True)
class Partition:
    number: int  # 1-based, as Linux names them (mmcblk0p1)
    type: int
    start: int  # bytes from the start of the disk
    size: int  # bytes


def partitions(dev: BlockDevice) -> list[Partition]:
    """Return the primary partitions of the MBR at the start of ``dev``."""
    sector = dev.read(0, SECTOR)
    if sector[510:512] != b"\x55\xaa":
        raise PartitionError(
            "no partition table: the image does not start with an MBR "
            "(is it a Raspberry Pi OS .img, fully decompressed?)"
        )
    found = []
    for i in range(4):
        entry = sector[446 + 16 * i : 462 + 16 * i]
        ptype = entry[4]
        lba, count = struct.unpack_from("<II", entry, 8)
        if ptype and count:
            found.append(Partition(i + 1, ptype, lba * SECTOR, count * SECTOR))
    return found


def looks_like_fat(boot_sector: bytes) -> bool:
    """Tell whether a sector is a FAT boot sector (a bare filesystem without a table)."""
    if len(boot_sector) < 512 or boot_sector[0] not in (0xEB, 0xE9):
        return False
    bps, spc = struct.unpack_from("<HB", boot_sector, 11)
    fats = boot_sector[16]
    powers = (1, 2, 4, 8, 16, 32, 64, 128)
    return bps in (512, 1024, 2048, 4096) and spc in powers and fats in (1, 2)


def boot_partition(dev: BlockDevice) -> Partition:
    """Return the first FAT partition (Raspberry Pi OS keeps its boot files there)."""
    first = dev.read(0, SECTOR)
    if looks_like_fat(first):
        return Partition(0, 0, 0, dev.size or 0)  # a bare FAT filesystem, e.g. bootfs alone
    parts = partitions(dev)
    if any(p.type == GPT_PROTECTIVE for p in parts):
        raise PartitionError(
            "the image has a GPT partition table; Raspberry Pi OS images use MBR (is this the right image?)"
        )
    for part in parts:
        if part.type in FAT_TYPES:
            if dev.size and part.start + part.size > dev.size:
                raise PartitionError(
                    f"partition {part.number} ends past the end of the image "
                    f"({part.start + part.size} > {dev.size} bytes): the image is truncated; "
                    "download or decompress it again"
                )
            return part
    kinds = ", ".join(f"{p.number}: type 0x{p.type:02x}" for p in parts) or "none"
    raise PartitionError(
        f"no FAT boot partition in the partition table (partitions {kinds}); is this a Raspberry Pi OS image?"
    )
