"""Read-only cards: lock switch, read-only volume, and macOS refusing the raw device."""

from __future__ import annotations

import errno

from click.testing import CliRunner

from appliance.flash import readonly
from appliance.flash.cli import flash
from appliance.flash.drive import Drive
from appliance.flash.errors import WriteError, WriteRefusedError

CARD_SIZE = 31914983424


def _run(*args: str):
    return CliRunner().invoke(flash, list(args))


def test_locked_card_stops_with_slide_the_lock_switch_up(fake, not_root, images):
    fake.darwin("sd-locked")
    result = _run("--image", str(images["raw"]), "--device", "disk4", "--yes")
    assert result.exit_code == 1
    assert "slide the small switch on its left side up" in result.output
    assert fake.mutating() == []


def test_locked_card_is_explained_when_it_is_the_only_card(fake, images):
    fake.darwin("sd-locked")
    result = _run("--image", str(images["raw"]), "--dry-run")
    assert result.exit_code == 1 and "locked" in result.output


def test_linux_ro_card_gets_the_same_lock_message(fake, images):
    fake.linux("linux/lsblk-laptop-cards.json")
    result = _run("--image", str(images["raw"]), "--device", "sdc", "--yes")
    assert result.exit_code == 1 and "slide the small switch" in result.output


def test_refused_raw_device_explains_full_disk_access_and_sharing(fake, not_root, images):
    fake.darwin("sd-slot")
    disk = fake.disk("rdisk4", CARD_SIZE)
    (fake.state / "refuse-rdisk4").write_text("")
    result = _run("--image", str(images["xz"]), "--device", "disk4", "--yes")
    assert result.exit_code == 1, result.output
    for text in (
        "macOS refused to open /dev/rdisk4 for writing (Operation not permitted)",
        "Removable Volumes",
        "Full Disk Access",
        'sudo sharing -a "/Volumes/bootfs"',
        "--fix-readonly",
    ):
        assert text in result.output
    with open(disk, "rb") as f:
        assert f.read(4096) == bytes(4096)


def test_fix_readonly_shares_the_card_writes_and_removes_the_share(fake, not_root, images):
    fake.darwin("sd-slot")
    disk = fake.disk("rdisk4", CARD_SIZE)
    (fake.state / "refuse-rdisk4").write_text("")  # refused until the card is shared
    result = _run("--image", str(images["xz"]), "--device", "disk4", "--yes", "--fix-readonly")
    assert result.exit_code == 0, result.output
    steps = fake.mutating()
    share = steps.index("sudo sharing -a /Volumes/bootfs")
    unmount = steps.index("diskutil unmountDisk force /dev/disk4")
    eject = steps.index("diskutil eject /dev/disk4")
    unshare = steps.index("sudo sharing -r bootfs")
    assert share < unmount < eject < unshare
    assert not (fake.state / "shared").exists()
    with open(disk, "rb") as f:
        assert f.read(len(images["data"])) == images["data"]


def test_share_is_removed_even_when_the_write_fails(fake, not_root, images, tmp_path):
    fake.darwin("sd-slot")
    fake.disk("rdisk4", CARD_SIZE)
    cut = tmp_path / "cut.img.gz"
    cut.write_bytes(images["gz"].read_bytes()[:-100])
    result = _run("--image", str(cut), "--device", "disk4", "--yes", "--fix-readonly")
    assert result.exit_code == 1 and "damaged or incomplete" in result.output
    assert "sudo sharing -r bootfs" in fake.mutating()
    assert not (fake.state / "shared").exists()


def test_readonly_volume_is_unmounted_and_written(fake, not_root, images):
    fake.darwin("sd-readonly-volume")
    fake.disk("rdisk4", CARD_SIZE)
    result = _run("--image", str(images["raw"]), "--device", "disk4", "--yes")
    assert result.exit_code == 0, result.output
    assert "mounted read-only, but the card itself is writable" in result.output


def _drive(**kw) -> Drive:
    fields = dict(id="sdb", path="/dev/sdb", raw_path="/dev/sdb", removable=True, size=10**9)
    fields.update(kw)
    return Drive(**fields)


def test_open_errors_on_linux_say_what_to_do():
    rofs = readonly.open_error(_drive(), OSError(errno.EROFS, "Read-only file system"), "linux")
    assert isinstance(rofs, WriteRefusedError) and "lock switch" in str(rofs)
    busy = readonly.open_error(_drive(), OSError(errno.EBUSY, "Device or resource busy"), "linux")
    assert isinstance(busy, WriteError) and "still mounted" in str(busy)
    gone = readonly.open_error(_drive(), OSError(errno.ENOENT, "No such file"), "linux")
    assert "removed" in str(gone)


def test_fix_readonly_needs_a_mounted_volume(fake, not_root, images):
    fake.darwin("sd-slot")
    fake.disk("rdisk4", CARD_SIZE)
    table = fake.root / "diskutil-sd-slot"
    # The same card with nothing mounted: `diskutil list` shows no MountPoint on disk4s1.
    import plistlib

    listing = plistlib.loads((table / "list -plist physical").read_bytes())
    for entry in listing["AllDisksAndPartitions"]:
        for part in entry.get("Partitions", []):
            part.pop("MountPoint", None)
    (table / "list -plist physical").unlink()
    (table / "list -plist physical").write_bytes(plistlib.dumps(listing))
    result = _run("--image", str(images["raw"]), "--device", "disk4", "--yes", "--fix-readonly")
    assert result.exit_code == 1 and "no volume of disk4 is mounted" in result.output
    assert fake.mutating() == []


def test_fix_readonly_is_ignored_on_linux_with_a_note(fake, images, tmp_path):
    result = _run(
        "--image",
        str(images["raw"]),
        "--device",
        str(tmp_path / "o.img"),
        "--yes",
        "--fix-readonly",
    )
    assert result.exit_code == 0 and "only applies to cards on macOS" in result.output
