"""The target rules: which disk --device may name, and what happens without --device."""

from __future__ import annotations

import pytest

from appliance.flash import safety
from appliance.flash.drive import Drive
from appliance.flash.errors import LockedCardError, NoTargetError, UnsafeTargetError


def _disk(ident: str, **kw) -> Drive:
    raw = f"/dev/r{ident}" if ident.startswith("disk") else f"/dev/{ident}"
    fields = dict(
        id=ident,
        path=f"/dev/{ident}",
        raw_path=raw,
        model="Card",
        size=32 * 10**9,
        removable=True,
    )
    fields.update(kw)
    return Drive(**fields)


def _judged(*drives: Drive) -> list:
    return safety.judge(list(drives))


@pytest.mark.parametrize("spec", ["disk2", "/dev/disk2", "/dev/rdisk2"])
def test_resolve_device_accepts_identifier_node_and_raw_node(spec):
    card = _disk("disk2")
    assert safety.resolve_device(spec, _judged(_disk("disk1"), card)) is card


@pytest.mark.parametrize(
    "spec, whole",
    [("disk2s1", "disk2"), ("/dev/rdisk2s2", "disk2"), ("sdb1", "sdb"), ("mmcblk0p1", "mmcblk0")],
)
def test_resolve_device_refuses_a_partition_naming_the_whole_disk(spec, whole):
    drives = _judged(_disk("disk2"), _disk("sdb"), _disk("mmcblk0"))
    with pytest.raises(UnsafeTargetError, match=f"partition of {whole}"):
        safety.resolve_device(spec, drives)


def test_resolve_device_does_not_take_disk10_for_a_partition_of_disk1():
    with pytest.raises(UnsafeTargetError, match="not a whole physical disk"):
        safety.resolve_device("disk10", _judged(_disk("disk1")))


def test_resolve_device_refuses_unknown_devices():
    with pytest.raises(UnsafeTargetError, match="appliance flash --list"):
        safety.resolve_device("/dev/sdz", _judged(_disk("sdb")))


def test_resolve_device_refuses_system_disk_even_when_named():
    system_disk = _disk("disk0", internal=True, removable=False, mountpoints=["/"])
    with pytest.raises(UnsafeTargetError, match="system path"):
        safety.resolve_device("disk0", _judged(system_disk))


def test_force_never_overrides_internal_or_system():
    internal = _disk("nvme0n1", internal=True, removable=False)
    system_disk = _disk("disk0", system=True)
    assert safety.refusal(internal, force=True).startswith("internal disk, not removable")
    assert "system disk" in safety.refusal(system_disk, force=True)


def test_size_limit_refuses_large_disks_without_force():
    big = _disk("sdb", size=safety.SIZE_LIMIT + 1)
    assert "--force" in safety.refusal(big)
    assert safety.refusal(big, force=True) == ""
    assert safety.refusal(_disk("sdc", size=128 * 10**9)) == ""  # a 128 GB card passes


def test_locked_card_named_by_device_says_slide_the_lock_switch_up():
    locked = _disk("disk4", writable=False)
    with pytest.raises(LockedCardError, match="slide the small switch on its left side up"):
        safety.choose(_judged(locked), "disk4")


def test_choose_proposes_the_only_candidate():
    card = _disk("disk4")
    drives = _judged(_disk("disk0", system=True), card)
    assert safety.choose(drives, None) is card


def test_choose_with_only_a_locked_card_explains_the_lock():
    drives = _judged(_disk("disk0", system=True), _disk("disk4", writable=False))
    with pytest.raises(LockedCardError, match="locked"):
        safety.choose(drives, None)


def test_choose_without_candidates_says_insert_the_card():
    with pytest.raises(NoTargetError, match="insert the card"):
        safety.choose(_judged(_disk("disk0", system=True)), None)


def test_choose_with_two_candidates_asks_for_device():
    with pytest.raises(NoTargetError, match="--device"):
        safety.choose(_judged(_disk("disk4"), _disk("disk5")), None)


def test_file_targets_are_paths_never_bare_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "disk2").write_bytes(b"")
    assert not safety.is_file_target("disk2")  # a bare name always means a disk
    assert safety.is_file_target(str(tmp_path / "disk2"))
    assert safety.is_file_target(str(tmp_path / "new.img"))
    assert not safety.is_file_target("/dev/sdz")
    assert not safety.is_file_target("/dev/null")  # exists, but not a regular file


def test_check_fits_refuses_an_image_larger_than_the_card():
    with pytest.raises(UnsafeTargetError, match="does not fit"):
        safety.check_fits(_disk("disk4", size=4 * 10**9), 5 * 10**9)
    safety.check_fits(_disk("disk4", size=4 * 10**9), None)  # unknown size: checked while writing


def test_a_mounted_disk_image_is_refused_even_when_it_claims_to_be_physical():
    import plistlib

    from flash_support import FIXTURES

    from appliance.flash import drives_darwin

    info = plistlib.loads((FIXTURES / "macos/diskutil-info-disk2-usb-stick.plist").read_bytes())
    info.update(BusProtocol="Disk Image", VirtualOrPhysical="Physical")  # as hdiutil attach shows it
    (drive,) = _judged(drives_darwin.drive_from_info(info, ["/Volumes/Installer"]))
    assert not drive.target and "disk image" in drive.why


def test_a_time_machine_destination_is_refused():
    backup = _disk("disk3", mountpoints=["/Volumes/.timemachine/ABCD/2025-01-01-120000.backup"])
    (drive,) = _judged(backup)
    assert not drive.target and "Time Machine" in drive.why
    with pytest.raises(UnsafeTargetError, match="Time Machine"):
        safety.choose([drive], "disk3")


def test_force_never_lifts_emmc_or_in_use():
    emmc = _disk("mmcblk0", emmc="/dev/mmcblk0 has boot0 and boot1 partitions, which only eMMC has")
    busy = _disk("sdb", in_use=["/dev/sdb1 is active swap (release it first: sudo swapoff /dev/sdb1)"])
    big_and_busy = _disk("sdc", size=safety.SIZE_LIMIT * 2, in_use=busy.in_use)
    for drive in (emmc, busy, big_and_busy):
        assert safety.refusal(drive, force=True) == safety.refusal(drive) != ""
    assert safety.refusal(emmc).startswith("eMMC soldered to this board: /dev/mmcblk0 has boot0")
    assert "Put the SD card in a USB card reader" in safety.refusal(emmc)
    assert safety.refusal(big_and_busy).startswith("in use, or part of something bigger: /dev/sdb1 is active")


def test_a_system_disk_says_system_before_what_else_uses_it():
    root_on_luks = _disk("nvme0n1", mountpoints=["/"], in_use=["/dev/nvme0n1p2 is an open LUKS volume"])
    assert safety.refusal(root_on_luks) == "holds mounted system path(s): /"


def test_active_swap_is_a_use_not_a_system_path():
    swap = _disk("sdf", mountpoints=["[SWAP]"], in_use=["/dev/sdf1 is active swap"])
    assert safety.refusal(swap).startswith("in use, or part of something bigger: /dev/sdf1 is active swap")


def test_a_loop_device_mounted_anywhere_is_in_use_not_a_system_disk():
    loop = _disk(
        "loop0",
        kind="loop",
        internal=True,
        mountpoints=["/srv/image"],
        in_use=["/dev/loop0 is mounted at /srv/image (unmount it first: sudo umount /srv/image)"],
    )
    (judged,) = _judged(loop)
    assert not judged.target and judged.why.startswith("in use")
    with pytest.raises(UnsafeTargetError, match="Refusing to write loop0 .*mounted at /srv/image"):
        safety.choose([judged], "loop0")


def test_a_new_or_idle_file_target_is_accepted(tmp_path):
    from appliance.flash.inuse_linux import Kernel

    nothing = Kernel(str(tmp_path / "sys"), str(tmp_path / "proc"))
    assert safety.file_target(str(tmp_path / "new.img"), nothing).target
    (tmp_path / "old.img").write_bytes(b"x" * 10)
    old = safety.file_target(str(tmp_path / "old.img"), nothing)
    assert old.target and old.size == 10 and old.in_use == []
