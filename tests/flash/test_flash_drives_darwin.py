"""macOS drive listing and safety from real and hand-written `diskutil -plist` output."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest
from flash_support import FIXTURES

from appliance.flash import drives_darwin, safety
from appliance.flash.drives import list_drives

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures"


def _info(name: str) -> dict:
    return plistlib.loads((FIXTURES / "macos" / name).read_bytes())


def _judged(fake, scenario: str) -> dict:
    fake.darwin(scenario)
    return {d.id: d for d in safety.judge(list_drives("darwin"))}


def test_fixtures_copies_are_byte_for_byte():
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is not beside this clone (it lies outside the repository): nothing to compare")
    for original in (SHARED / "macos").iterdir():
        assert (FIXTURES / "macos" / original.name).read_bytes() == original.read_bytes()
    for original in (SHARED / "linux").iterdir():
        assert (FIXTURES / "linux" / original.name).read_bytes() == original.read_bytes()


def test_list_drives_lists_every_physical_whole_disk(fake):
    drives = _judged(fake, "usb-stick")
    assert sorted(drives) == ["disk0", "disk2"]
    calls = [" ".join(c["args"]) for c in fake.calls() if c["cmd"] == "diskutil"]
    assert "list -plist physical" in calls  # not `list external`, which misses the SD slot


def test_internal_nvme_system_disk_is_refused(fake):
    disk0 = _judged(fake, "usb-stick")["disk0"]
    assert not disk0.target
    assert disk0.system  # from `diskutil info -plist /`
    assert "system disk" in disk0.why


def test_apfs_volumes_count_as_mounts_of_their_physical_store(fake):
    listing = plistlib.loads((FIXTURES / "macos" / "diskutil-all-usb-stick.plist").read_bytes())
    mounts = drives_darwin.mounts_by_whole_disk(listing)
    assert "/" in mounts["disk0"]  # the sealed snapshot of disk1s5, stored on disk0s2
    assert "/System/Volumes/Data" in mounts["disk0"]
    assert mounts["disk2"] == {"/Volumes/NO NAME"}


def test_system_mounts_alone_refuse_the_disk_when_boot_disk_is_unknown():
    listing = plistlib.loads((FIXTURES / "macos" / "diskutil-all-usb-stick.plist").read_bytes())
    mounts = drives_darwin.mounts_by_whole_disk(listing)
    drive = drives_darwin.drive_from_info(_info("diskutil-info-disk0.plist"), sorted(mounts["disk0"]))
    drive.internal = False  # even if it claimed to be external
    assert "mounted system path" in safety.refusal(drive)


def test_usb_stick_is_accepted(fake):
    stick = _judged(fake, "usb-stick")["disk2"]
    assert stick.target and stick.why == ""
    assert (stick.path, stick.raw_path) == ("/dev/disk2", "/dev/rdisk2")
    assert (stick.model, stick.size, stick.removable, stick.writable) == (
        "Cruzer Fit",
        15682240512,
        True,
        True,
    )
    assert stick.mountpoints == ["/Volumes/NO NAME"]


def test_synthesized_apfs_container_is_refused_as_virtual():
    drive = drives_darwin.drive_from_info(_info("diskutil-info-disk1.plist"), [])
    assert drive.virtual
    assert "virtual" in safety.refusal(drive)


def test_builtin_sd_slot_reporting_internal_over_usb_is_accepted(fake):
    slot = _judged(fake, "sd-slot")["disk4"]
    assert slot.internal and slot.kind == "sd-slot"
    assert slot.target, slot.why
    assert slot.mountpoints == ["/Volumes/bootfs"]
    assert not slot.volume_readonly


def test_internal_usb_disk_without_removable_media_is_not_an_sd_slot():
    info = dict(_info("diskutil-info-disk4-sd-slot.plist"))
    info.update(RemovableMedia=False, Ejectable=False, Removable=False)
    drive = drives_darwin.drive_from_info(info, [])
    assert drive.kind == "disk"
    assert safety.refusal(drive).startswith("internal disk (USB), not removable: it is part of this computer")


def test_locked_card_is_refused_with_the_lock_switch_reason(fake):
    slot = _judged(fake, "sd-locked")["disk4"]
    assert not slot.writable and not slot.target
    assert "slide it up" in slot.why


def test_readonly_volume_on_writable_card_is_noted_not_refused(fake):
    slot = _judged(fake, "sd-readonly-volume")["disk4"]
    assert slot.volume_readonly
    assert slot.target


def test_external_disk_above_size_limit_needs_force(fake, tmp_path):
    big = _info("diskutil-info-disk2-usb-stick.plist")
    big["Size"] = 2_000_398_934_016
    path = tmp_path / "big.plist"
    path.write_bytes(plistlib.dumps(big))
    fake.darwin("usb-stick", {"info -plist disk2": str(path)})
    drive = {d.id: d for d in list_drives("darwin")}["disk2"]
    assert "--force" in safety.refusal(drive)
    assert safety.refusal(drive, force=True) == ""


def test_whole_disk_of_strips_partitions_and_raw_prefix():
    assert drives_darwin.whole_disk_of("disk1s5s1") == "disk1"
    assert drives_darwin.whole_disk_of("/dev/rdisk12s2") == "disk12"
