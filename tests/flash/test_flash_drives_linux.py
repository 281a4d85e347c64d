"""Linux drive listing and safety from real and hand-written `lsblk -J -b` output."""

from __future__ import annotations

import json

import pytest
from flash_support import FIXTURES

from appliance.flash import drives_linux, safety


def _drives(fixture: str, **kw) -> dict:
    data = json.loads((FIXTURES / "linux" / fixture).read_text())
    return {d.id: d for d in safety.judge(drives_linux.list_drives(data=data, **kw))}


def test_old_lsblk_strings_and_human_sizes_are_understood():
    drives = _drives("lsblk-no-children-mountpoints.json")
    sda = drives["sda"]
    assert sda.removable and sda.writable
    assert sda.size == int(14.3 * 2**30)
    assert sda.mountpoints == ["/media/jwentz/Temp"]
    assert sda.target


def test_old_lsblk_system_nvme_is_refused():
    nvme = _drives("lsblk-no-children-mountpoints.json")["nvme0n1"]
    assert not nvme.target
    assert "/" in nvme.mountpoints and "[SWAP]" in nvme.mountpoints
    assert "mounted system path" in nvme.why


def test_this_machine_system_disk_and_empty_zram_are_refused():
    drives = _drives("lsblk-this-machine-loop.json")
    assert sorted(drives) == ["vda", "zram0"]  # the loop device is not offered
    assert "system path(s): /" in drives["vda"].why
    assert not drives["zram0"].target


def test_loop_device_is_listed_only_when_named_and_then_accepted():
    drives = _drives("lsblk-this-machine-loop.json", include_loop=True)
    loop = drives["loop0"]
    assert loop.kind == "loop" and loop.path == "/dev/loop0"
    assert loop.target, loop.why
    assert safety.choose(list(drives.values()), "/dev/loop0") is loop
    with pytest.raises(Exception, match="No SD card"):
        safety.choose(list(drives.values()), None)  # never proposed on its own


def test_usb_card_reader_is_accepted_and_mounts_are_collected():
    sda = _drives("lsblk-laptop-cards.json")["sda"]
    assert sda.target and sda.bus == "usb"
    assert sda.mountpoints == ["/media/pi/bootfs", "/media/pi/rootfs"]
    assert sda.model == "Generic STORAGE DEVICE"


def test_builtin_mmc_reader_without_tran_is_removable():
    mmc = _drives("lsblk-laptop-cards.json")["mmcblk0"]
    assert mmc.removable and mmc.bus == "mmc"
    assert mmc.target
    assert mmc.volume_readonly  # its partition is mounted read-only, the card is writable


def test_locked_card_is_refused_with_lock_switch_reason():
    sdc = _drives("lsblk-laptop-cards.json")["sdc"]
    assert not sdc.writable and not sdc.target
    assert "lock switch" in sdc.why


def test_big_usb_disk_needs_force():
    sdb = _drives("lsblk-laptop-cards.json")["sdb"]
    assert "--force" in sdb.why
    assert safety.refusal(sdb, force=True) == ""


def test_root_on_dm_crypt_marks_the_nvme_as_system():
    nvme = _drives("lsblk-laptop-cards.json")["nvme0n1"]
    assert {"/", "/home", "/boot/efi"} <= set(nvme.mountpoints)
    assert not nvme.target


@pytest.mark.parametrize(
    "value, expected",
    [(True, True), (False, False), ("1", True), ("0", False), ("true", True), (None, False)],
)
def test_flag_reads_old_and_new_booleans(value, expected):
    assert drives_linux.flag(value) is expected


@pytest.mark.parametrize(
    "value, expected",
    [(512, 512), ("512", 512), ("14.3G", int(14.3 * 2**30)), ("477G", 477 * 2**30), (None, 0)],
)
def test_parse_size_reads_bytes_and_human_sizes(value, expected):
    assert drives_linux.parse_size(value) == expected


def test_lsblk_falls_back_to_old_columns(fake, tmp_path, monkeypatch):
    from appliance.flash import system
    from appliance.flash.errors import CommandError

    fake.linux("linux/lsblk-no-children-mountpoints.json")
    seen = []
    real_run = system.run

    def old_lsblk(argv, **kw):
        seen.append(argv[-1])
        if "MOUNTPOINTS" in argv[-1]:
            raise CommandError("lsblk: unknown column: MOUNTPOINTS")
        return real_run(argv, **kw)

    monkeypatch.setattr(system, "run", old_lsblk)
    drives = drives_linux.list_drives()
    assert [d.id for d in drives] == ["sda", "nvme0n1"]
    assert seen == [drives_linux.COLUMNS, drives_linux.OLD_COLUMNS]
