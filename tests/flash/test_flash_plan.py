"""--dry-run: the printed plan names every command and write, and nothing is touched."""

from __future__ import annotations

from click.testing import CliRunner

from appliance.flash import plan
from appliance.flash.cli import flash
from appliance.flash.drive import Drive
from appliance.flash.source import Image


def _dry(*args: str):
    return CliRunner().invoke(flash, ["--dry-run", *args])


def test_dry_run_macos_prints_unmount_write_verify_eject_and_touches_nothing(fake, not_root, images):
    fake.darwin("usb-stick")
    disk = fake.disk("rdisk2", 4096)
    result = _dry("--image", str(images["xz"]), "--device", "disk2")
    assert result.exit_code == 0, result.output
    out = result.output
    order = [
        "diskutil unmountDisk force /dev/disk2",
        "opener.py rw /dev/rdisk2",
        "write 3.2 MB (xz, decompressed while writing, pi.img.xz) to /dev/rdisk2 in 1 MiB blocks",
        "the last padded to 512 bytes",
        "read back 3.2 MB from /dev/rdisk2 and compare SHA-256",
        "diskutil eject /dev/disk2",
    ]
    positions = [out.index(line) for line in order]
    assert positions == sorted(positions)
    assert fake.mutating() == []  # only `diskutil list/info` ran
    assert disk.read_bytes() == bytes(4096)


def test_dry_run_dd_shows_the_literal_bsd_dd_line_on_macos(fake, not_root, images):
    fake.darwin("usb-stick")
    result = _dry("--dd", "--image", str(images["zip"]), "--device", "disk2")
    assert result.exit_code == 0, result.output
    assert "sudo dd bs=1m if=" in result.output
    assert "pi.img of=/dev/rdisk2" in result.output
    assert "decompress " in result.output  # to a temporary file first, as the user


def test_dry_run_dd_uses_gnu_bs_on_linux(fake, not_root, images):
    fake.linux("linux/lsblk-laptop-cards.json")
    result = _dry("--dd", "--image", str(images["raw"]), "--device", "/dev/sda")
    assert result.exit_code == 0, result.output
    assert f"sudo dd bs=1M if={images['raw']} of=/dev/sda" in result.output
    assert "sudo umount /media/pi/bootfs" in result.output
    assert fake.mutating() == []


def test_dry_run_file_target_is_not_created(images, tmp_path):
    target = tmp_path / "new.img"
    result = _dry("--image", str(images["gz"]), "--device", str(target))
    assert result.exit_code == 0, result.output
    assert "sudo" not in result.output and "unmount" not in result.output
    assert not target.exists()


def test_dry_run_still_refuses_unsafe_targets(fake, images):
    fake.darwin("usb-stick")
    result = _dry("--image", str(images["raw"]), "--device", "disk0")
    assert result.exit_code == 1
    assert "system disk" in result.output


def _card() -> Drive:
    return Drive(
        id="disk4",
        path="/dev/disk4",
        raw_path="/dev/rdisk4",
        size=32 * 10**9,
        removable=True,
        kind="sd-slot",
        internal=True,
        mountpoints=["/Volumes/bootfs"],
    )


def test_fix_readonly_shares_before_unmount_and_unshares_last(not_root):
    steps = plan.build(Image("/x/pi.img", "raw", 1 << 20), _card(), "darwin", plan.Options(fix_readonly=True))
    lines = [s.line() for s in steps]
    share = next(i for i, x in enumerate(lines) if "sharing -a /Volumes/bootfs" in x)
    unmount = next(i for i, x in enumerate(lines) if "unmountDisk" in x)
    assert share < unmount
    assert "sharing -r bootfs" in lines[-1] and steps[-1].cleanup


def test_no_verify_no_eject_drop_their_steps(not_root):
    steps = plan.build(
        Image("/x/pi.img", "raw", 1 << 20), _card(), "darwin", plan.Options(verify=False, eject=False)
    )
    kinds = [s.kind for s in steps]
    assert "verify" not in kinds
    assert not any("eject" in s.argv for s in steps)


def test_as_root_no_sudo_is_printed(monkeypatch):
    from appliance.flash import system

    monkeypatch.setattr(system, "is_root", lambda: True)
    steps = plan.build(Image("/x/pi.img", "raw", 1 << 20), _card(), "darwin", plan.Options(dd=True))
    text = plan.render(steps)
    assert "sudo" not in text
    assert "dd bs=1m if=/x/pi.img of=/dev/rdisk4" in text
