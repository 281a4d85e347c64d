"""Finding the boot partition from the partition table; damaged and foreign images."""

from __future__ import annotations

import pytest
from image_support import run

from appliance.image.blockdev import BLOCK, BlockDevice
from appliance.image.errors import PartitionError
from appliance.image.mbr import boot_partition


def find(path):
    with open(path, "rb") as fh:
        return boot_partition(BlockDevice(fh))


def test_mbr_finds_the_fat_partition(bookworm):
    part = find(bookworm.path)
    assert (part.number, part.type, part.start) == (1, 0x0C, bookworm.offset)


def test_mbr_skips_non_fat_partitions(tmp_path, image_cache):
    image = image_cache(tmp_path, 16)
    # Number the partitions the other way round: 1 is the ext4 root, 2 the FAT boot one.
    table = "label: dos\nstart=18432, size=8192, type=83\nstart=2048, size=16384, type=e\n"
    run("sfdisk", "-q", "--no-reread", str(image.path), input=table.encode())
    part = find(image.path)
    assert (part.number, part.type, part.start) == (2, 0x0E, image.offset)


def test_mbr_truncated_image(bookworm):
    with open(bookworm.path, "r+b") as fh:
        fh.truncate(bookworm.offset + 4096)
    with pytest.raises(PartitionError, match="truncated"):
        find(bookworm.path)


def test_mbr_no_partition_table(tmp_path):
    path = tmp_path / "blank.img"
    path.write_bytes(bytes(2 * BLOCK))
    with pytest.raises(PartitionError, match="no partition table"):
        find(path)


def test_mbr_gpt_is_refused(tmp_path):
    path = tmp_path / "gpt.img"
    with open(path, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    run("sfdisk", "-q", str(path), input=b"label: gpt\nstart=2048, size=4096, type=L\n")
    with pytest.raises(PartitionError, match="GPT"):
        find(path)


def test_mbr_bare_fat_filesystem(tmp_path):
    path = tmp_path / "bootfs.img"
    with open(path, "wb") as f:
        f.truncate(4 * 1024 * 1024)
    run("mkfs.vfat", "-n", "BOOTFS", str(path))
    part = find(path)
    assert (part.number, part.start) == (0, 0)
