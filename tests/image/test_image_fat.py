"""The FAT layer: case-insensitive names in every stored form, writes mtools reads back."""

from __future__ import annotations

import pytest
from image_support import CMDLINE

from appliance.image import fatdir
from appliance.image.blockdev import BlockDevice
from appliance.image.errors import FatError
from appliance.image.fat import FatVolume
from appliance.image.fattable import AllocationTable

FORMS = ["mtools", "upper", "mixed", "vfat"]  # 8.3 + case flags, 8.3 upper, mtools LFN, our LFN


def open_volume(image, fh):
    return FatVolume(BlockDevice(fh, writable=True), image.offset)


@pytest.mark.parametrize("fat", [12, 16, 32])
@pytest.mark.parametrize("form", FORMS)
def test_fat_finds_cmdline_in_any_case_and_form(image_cache, tmp_path, fat, form):
    image = image_cache(tmp_path, fat, form=form)
    with open(image.path, "rb") as fh:
        vol = FatVolume(BlockDevice(fh), image.offset)
        assert vol.kind == fat
        for name in ("cmdline.txt", "/CMDLINE.TXT", "CmdLine.Txt"):
            assert vol.read(name) == CMDLINE


@pytest.mark.parametrize(
    "form,shown",
    [
        ("mtools", "cmdline  txt"),
        ("upper", "CMDLINE  TXT"),
        ("mixed", "Cmdline.txt"),
        ("vfat", "cmdline.txt"),
    ],
)
def test_fat_rewrite_keeps_the_stored_name_form(image_cache, tmp_path, form, shown):
    image = image_cache(tmp_path, 32, form=form)
    before = [line for line in image.mdir().splitlines() if "txt" in line.lower() and "cmd" in line.lower()]
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        vol.write("CMDLINE.TXT", CMDLINE.rstrip() + b" quiet2\n")
        vol.flush()
    after = [line for line in image.mdir().splitlines() if "cmd" in line.lower()]
    assert len(after) == 1 and shown in after[0]
    assert after[0].split()[:2] == before[0].split()[:2]  # same 8.3 name, same case
    assert image.mtype("cmdline.txt") == CMDLINE.rstrip() + b" quiet2\n"
    image.fsck(tmp_path)


@pytest.mark.parametrize("fat", [12, 16, 32])
def test_fat_new_files_and_folders_read_back_by_mtools(image_cache, tmp_path, fat):
    image = image_cache(tmp_path, fat)
    big = bytes(range(256)) * 700  # spans many clusters
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        vol.makedirs("appliance/deeper")
        vol.write("appliance/appliance.toml", b"[source]\n")
        vol.write("appliance/deeper/big.bin", big)
        vol.write("user-data", b"#cloud-config\n")
        vol.write("FIRSTRUN.SH", b"#!/bin/sh\n")
        vol.flush()
    assert image.mtype("appliance/appliance.toml") == b"[source]\n"
    assert image.mtype("appliance/deeper/big.bin") == big
    assert image.mtype("user-data") == b"#cloud-config\n"
    listing = image.mdir()
    assert "user-data" in listing  # a long name, with an 8.3 alias
    assert "FIRSTRUN SH" in listing  # a plain upper-case 8.3 name needs no long name
    image.fsck(tmp_path)


def test_fat_directory_grows_past_one_cluster(image_cache, tmp_path):
    image = image_cache(tmp_path, 32)  # 512-byte clusters: 16 entries each
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        vol.makedirs("many")
        for i in range(60):
            vol.write(f"many/a-long-file-name-{i:03}.txt", f"{i}\n".encode())
        vol.flush()
    for i in (0, 31, 59):
        assert image.mtype(f"many/a-long-file-name-{i:03}.txt") == f"{i}\n".encode()
    assert image.mdir("/many").count("a-long-file-name-") == 60
    image.fsck(tmp_path)


def test_fat_shrinking_and_deleting_wipes_freed_clusters(image_cache, tmp_path):
    image = image_cache(tmp_path, 16)
    secret = b"-----BEGIN OPENSSH PRIVATE KEY-----" + b"Z" * 3000
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        vol.write("id_ed25519", secret)
        vol.write("other", secret[:40])
        vol.flush()
        free_before = vol.free_clusters()
        vol.write("other", b"short")
        assert vol.delete("id_ed25519") is True
        assert vol.delete("id_ed25519") is False
        vol.flush()
        assert vol.free_clusters() > free_before
    raw = image.path.read_bytes()
    assert b"BEGIN OPENSSH PRIVATE KEY" not in raw
    assert b"ZZZZZZZZ" not in raw
    assert "id_ed25519" not in image.mdir()
    assert image.mtype("other") == b"short"
    image.fsck(tmp_path)


def test_fat_fixed_root_directory_full_is_a_clear_error(image_cache, tmp_path):
    image = image_cache(tmp_path, 12)  # FAT12/16 roots have a fixed number of entries
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        with pytest.raises(FatError, match="root directory is full"):
            for i in range(1000):
                vol.write(f"F{i}", b"x")


def test_fat_full_partition_is_a_clear_error(image_cache, tmp_path):
    image = image_cache(tmp_path, 12)
    with open(image.path, "r+b") as fh:
        vol = open_volume(image, fh)
        with pytest.raises(FatError, match="boot partition is full"):
            vol.write("huge.bin", bytes(4 * 1024 * 1024))


def test_fat_missing_file_and_directory(image_cache, tmp_path):
    image = image_cache(tmp_path, 32)
    with open(image.path, "rb") as fh:
        vol = FatVolume(BlockDevice(fh), image.offset)
        assert vol.find("nope.txt") is None
        assert vol.find("nodir/file") is None
        with pytest.raises(FileNotFoundError):
            vol.read("overlays")
        assert [e.name for e in vol.listdir("overlays")] == ["README"]


def test_fat_not_a_filesystem(tmp_path):
    path = tmp_path / "zeros.img"
    path.write_bytes(bytes(8192))
    with open(path, "rb") as fh, pytest.raises(FatError, match="no FAT filesystem"):
        FatVolume(BlockDevice(fh), 0)


def test_fat_damaged_chains_are_reported():
    table = AllocationTable(bytes(64), 16, 20)
    table.set(2, 3)
    table.set(3, 2)
    with pytest.raises(FatError, match="loops"):
        table.chain(2)
    table.set(3, 0)  # a chain running into a free cluster
    with pytest.raises(FatError, match="outside the filesystem"):
        table.chain(2)


@pytest.mark.parametrize(
    "name,taken,short",
    [
        ("user-data", [], b"USER-D~1   "),
        ("user-data", [b"USER-D~1   "], b"USER-D~2   "),
        ("firstrun.sh", [], b"FIRSTRUNSH "),
        ("appliance.toml", [], b"APPLIA~1TOM"),
        ("id_ed25519", [], b"ID_ED2~1   "),
        ("a b.txt", [], b"AB~1    TXT"),
    ],
)
def test_fat_short_aliases(name, taken, short):
    assert fatdir.make_short(name, taken) == short
    assert fatdir.plain_short(name) is None  # lower case or too long: needs a long name


def test_fat_plain_short_names():
    assert fatdir.plain_short("CMDLINE.TXT") == b"CMDLINE TXT"
    assert fatdir.plain_short("SSH") == b"SSH        "
    assert fatdir.plain_short("cmdline.txt") is None
