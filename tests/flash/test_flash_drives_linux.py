"""Linux drive listing and safety from real and hand-written `lsblk -J -b` output.

The kernel's side (sysfs holders, /proc/swaps, mountinfo) is read from a folder laid out like
/sys and /proc that each test builds, so this machine's own disks never leak in; the real
kernel is used in test_flash_loop.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flash_support import FIXTURES

from appliance.flash import drives_linux, safety
from appliance.flash.errors import UnsafeTargetError
from appliance.flash.inuse_linux import Kernel

NOTHING = Kernel("/nonexistent/sys", "/nonexistent/proc")  # a kernel that reports no use


def _drives(fixture: str, kernel: Kernel = NOTHING, **kw) -> dict:
    data = json.loads((FIXTURES / "linux" / fixture).read_text())
    return {d.id: d for d in safety.judge(drives_linux.list_drives(data=data, kernel=kernel, **kw))}


class FakeKernel:
    """A folder laid out like /sys and /proc, filled by the test."""

    def __init__(self, root: Path) -> None:
        self.sys, self.proc = root / "sys", root / "proc"
        (self.proc / "self").mkdir(parents=True)
        (self.sys / "block").mkdir(parents=True)
        (self.proc / "swaps").write_text("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n")
        (self.proc / "self" / "mountinfo").write_text("")
        self.kernel = Kernel(str(self.sys), str(self.proc))

    def disk(self, name: str, number: str, partitions: dict | None = None) -> None:
        """Add /sys/block/NAME with its dev number and partitions {name: number}."""
        self.write(f"block/{name}/dev", number)
        (self.sys / "block" / name / "holders").mkdir(exist_ok=True)
        for part, part_number in (partitions or {}).items():
            self.write(f"block/{name}/{part}/dev", part_number)
            self.write(f"block/{name}/{part}/partition", part[-1])
            (self.sys / "block" / name / part / "holders").mkdir(exist_ok=True)

    def write(self, rel: str, text: str) -> None:
        path = self.sys / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")

    def swap(self, path: str, kind: str = "partition") -> None:
        escaped = path.replace(" ", "\\040")
        with open(self.proc / "swaps", "a") as f:
            f.write(f"{escaped}\t{kind}\t\t8188\t\t0\t\t-2\n")

    def mount(self, number: str, source: str, point: str) -> None:
        escaped = point.replace(" ", "\\040")
        with open(self.proc / "self" / "mountinfo", "a") as f:
            f.write(f"45 27 {number} / {escaped} rw,relatime shared:1 - ext4 {source} rw\n")


@pytest.fixture
def kernel(tmp_path) -> FakeKernel:
    return FakeKernel(tmp_path / "kernel")


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


# -- eMMC soldered to the board (issue 14, finding 11) ---------------------------------------


def test_emmc_with_boot_partitions_is_refused_and_says_use_a_usb_reader():
    drives = _drives("lsblk-emmc-board.json")
    emmc = drives["mmcblk0"]
    assert not emmc.target and not emmc.removable
    assert emmc.why.startswith("eMMC soldered to this board: /dev/mmcblk0 has boot0 and boot1 partitions")
    assert "erase this computer's own storage" in emmc.why and "USB card reader" in emmc.why
    for boot in ("mmcblk0boot0", "mmcblk0boot1"):  # its hardware partitions: eMMC, not a locked card
        assert drives[boot].why.startswith(f"eMMC soldered to this board: {boot} is a hardware partition")


def test_sd_card_in_the_slot_beside_emmc_is_the_only_candidate():
    drives = _drives("lsblk-emmc-board.json")
    card = drives["mmcblk1"]
    assert card.target and card.removable and card.emmc == ""
    assert safety.choose(list(drives.values()), None) is card
    with pytest.raises(UnsafeTargetError, match="eMMC soldered to this board"):
        safety.choose(list(drives.values()), "/dev/mmcblk0")


def test_force_does_not_lift_the_emmc_refusal():
    emmc = _drives("lsblk-emmc-board.json")["mmcblk0"]
    assert safety.refusal(emmc, force=True).startswith("eMMC soldered")


def test_emmc_is_known_by_boot0_in_sysfs_when_lsblk_does_not_list_it(kernel):
    data = json.loads((FIXTURES / "linux" / "lsblk-emmc-board.json").read_text())
    data["blockdevices"] = [d for d in data["blockdevices"] if "boot" not in d["name"]]
    kernel.disk("mmcblk0boot0", "179:8")
    drives = {d.id: d for d in safety.judge(drives_linux.list_drives(data=data, kernel=kernel.kernel))}
    assert "/dev/mmcblk0 has boot0 partitions" in drives["mmcblk0"].why
    assert drives["mmcblk1"].target


def test_emmc_is_known_by_the_kernels_card_type(kernel):
    data = json.loads((FIXTURES / "linux" / "lsblk-emmc-board.json").read_text())
    data["blockdevices"] = [d for d in data["blockdevices"] if "boot" not in d["name"]]
    kernel.disk("mmcblk0", "179:0")
    kernel.write("block/mmcblk0/device/type", "MMC")
    kernel.disk("mmcblk1", "179:32")
    kernel.write("block/mmcblk1/device/type", "SD")
    drives = {d.id: d for d in safety.judge(drives_linux.list_drives(data=data, kernel=kernel.kernel))}
    assert "the kernel reports /dev/mmcblk0 as type MMC" in drives["mmcblk0"].why
    assert drives["mmcblk1"].target


# -- internal transports on hot-plug ports ---------------------------------------------------


@pytest.mark.parametrize("name, bus", [("sda", "sata"), ("sdc", "sas"), ("sdd", "scsi"), ("nvme1n1", "nvme")])
def test_internal_transport_is_refused_even_on_a_hotplug_port(name, bus):
    drive = _drives("lsblk-internal-hotplug.json")[name]
    assert not drive.target and not drive.removable
    assert drive.why.startswith(f"internal disk ({bus}), not removable: it is part of this computer")
    assert safety.refusal(drive, force=True) == drive.why


def test_sata_reader_with_removable_media_and_usb_card_are_accepted():
    drives = _drives("lsblk-internal-hotplug.json")
    assert drives["sdb"].target and drives["sdb"].removable  # rm=1: the medium comes out
    assert drives["sde"].target and drives["sde"].bus == "usb"


# -- disks in use though nothing of them is mounted where a card would be ---------------------


@pytest.mark.parametrize(
    "name, says",
    [
        ("sdb", "/dev/sdb1 is a ZFS pool member (zfs_member): export its pool first"),
        ("sdc", "/dev/sdc1 is an open LUKS volume, luks-0b6c1e2a (close it: "
                "sudo cryptsetup close luks-0b6c1e2a)"),
        ("sdd", "/dev/sdd1 is an LVM physical volume in use by vgbackup-data (deactivate it: "
                "sudo vgchange -an vgbackup)"),
        ("sde", "/dev/sde1 is a member of the running RAID array /dev/md0 (stop it: "
                "sudo mdadm --stop /dev/md0)"),
        ("sdf", "/dev/sdf1 is active swap (release it first: sudo swapoff /dev/sdf1)"),
        ("sdh", "/dev/sdh1 is a LUKS encrypted volume (crypto_LUKS): it is not open; "
                "if the disk really is the card"),
    ],
)  # fmt: skip
def test_disk_in_use_is_refused_with_what_uses_it_and_how_to_release_it(name, says):
    drive = _drives("lsblk-in-use.json")[name]
    assert not drive.target
    assert drive.why.startswith("in use, or part of something bigger: ")
    assert says in drive.why
    assert "choose another --device" in drive.why
    assert safety.refusal(drive, force=True) == drive.why  # --force never lifts it


def test_inactive_swap_and_a_mounted_card_are_accepted():
    drives = _drives("lsblk-in-use.json")
    assert drives["sdg"].target, drives["sdg"].why  # a swap signature nobody uses: just data
    assert drives["sdi"].target and drives["sdi"].volumes() == ["/media/pi/bootfs", "/media/pi/rootfs"]


def test_holders_in_sysfs_refuse_a_disk_whose_stack_lsblk_does_not_show(kernel):
    data = json.loads((FIXTURES / "linux" / "lsblk-in-use.json").read_text())
    (card,) = [d for d in data["blockdevices"] if d["name"] == "sdi"]
    for part in card["children"]:
        part["mountpoints"] = [None]
    kernel.disk("sdi", "8:128", {"sdi1": "8:129", "sdi2": "8:130"})
    (kernel.sys / "block/sdi/sdi2/holders/dm-3").mkdir()
    kernel.write("block/dm-3/dm/name", "cryptdata")
    kernel.write("block/dm-3/dm/uuid", "CRYPT-LUKS2-0b6c1e2a-cryptdata")
    why = safety.refusal(drives_linux.drive_from_lsblk(card, {"sdi"}, kernel.kernel))
    assert why.startswith("in use")
    assert "/dev/sdi2 is an open LUKS volume, cryptdata (close it: sudo cryptsetup close cryptdata)" in why


def test_holders_of_the_whole_disk_and_md_arrays_are_named(kernel):
    card = json.loads((FIXTURES / "linux" / "lsblk-laptop-cards.json").read_text())["blockdevices"][0]
    kernel.disk("sda", "8:0", {"sda1": "8:1", "sda2": "8:2"})
    (kernel.sys / "block/sda/holders/md127").mkdir()
    (kernel.sys / "block/sda/sda1/holders/dm-0").mkdir()
    kernel.write("block/dm-0/dm/name", "vg--pi-root")
    kernel.write("block/dm-0/dm/uuid", "LVM-abcdef")
    why = safety.refusal(drives_linux.drive_from_lsblk(card, {"sda"}, kernel.kernel))
    assert "/dev/sda is a member of the running RAID array /dev/md127" in why
    assert (
        "/dev/sda1 is an LVM physical volume in use by vg--pi-root (deactivate it: sudo vgchange -an vg-pi)"
        in why
    )


def test_swap_in_proc_swaps_refuses_a_partition_lsblk_shows_unmounted(kernel):
    card = json.loads((FIXTURES / "linux" / "lsblk-laptop-cards.json").read_text())["blockdevices"][0]
    kernel.disk("sda", "8:0", {"sda1": "8:1", "sda2": "8:2"})
    kernel.swap("/dev/sda2")
    why = safety.refusal(drives_linux.drive_from_lsblk(card, {"sda"}, kernel.kernel))
    assert (
        why.startswith("in use")
        and "/dev/sda2 is active swap (release it first: sudo swapoff /dev/sda2)" in why
    )


def test_a_loop_device_mounted_even_under_media_is_refused(kernel):
    data = json.loads((FIXTURES / "linux" / "lsblk-this-machine-loop.json").read_text())
    loop = data["blockdevices"][0]
    kernel.disk("loop0", "7:0")
    kernel.mount("7:0", "/dev/loop0", "/media/me/my image")
    drive = drives_linux.drive_from_lsblk(loop, {"loop0"}, kernel.kernel)
    why = safety.refusal(drive)
    assert "/dev/loop0 is mounted at /media/me/my image (unmount it first" in why


def test_the_lsblk_query_asks_for_filesystem_signatures():
    assert "FSTYPE" in drives_linux.COLUMNS.split(",") and "FSTYPE" in drives_linux.OLD_COLUMNS.split(",")


# -- file targets ------------------------------------------------------------------------------


def test_file_that_is_active_swap_is_refused(kernel, tmp_path):
    target = tmp_path / "swap file"
    target.write_bytes(bytes(4096))
    kernel.swap(str(target), "file")
    drive = safety.file_target(str(target), kernel.kernel)
    assert not drive.target
    assert f"{target} is active swap (release it first: sudo swapoff {target})" in drive.why
    with pytest.raises(UnsafeTargetError, match="Refusing to write file .*active swap"):
        safety.accepted(drive)


def test_file_backing_a_mounted_loop_device_is_refused(kernel, tmp_path):
    target = tmp_path / "card.img"
    target.write_bytes(bytes(4096))
    kernel.disk("loop3", "7:3", {"loop3p1": "259:4"})
    kernel.write("block/loop3/loop/backing_file", str(target))
    kernel.mount("259:4", "/dev/loop3p1", "/srv/data")
    drive = safety.file_target(str(target), kernel.kernel)
    assert f"{target} backs /dev/loop3, and /dev/loop3p1 is mounted at /srv/data" in drive.why
    assert "sudo losetup -d /dev/loop3" in drive.why


def test_file_backing_an_idle_loop_device_is_accepted(kernel, tmp_path):
    target = tmp_path / "card.img"
    target.write_bytes(bytes(4096))
    kernel.disk("loop3", "7:3")
    kernel.write("block/loop3/loop/backing_file", str(target))
    assert safety.file_target(str(target), kernel.kernel).target
