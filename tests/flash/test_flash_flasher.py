"""The flash as it runs: exact command sequences through fake diskutil/sudo/lsblk, real bytes."""

from __future__ import annotations

import os

import pytest
from click.testing import CliRunner

from appliance.flash import flasher
from appliance.flash.cli import flash

STICK_SIZE = 15682240512


def _run(*args: str, input: str | None = None):
    return CliRunner().invoke(flash, list(args), input=input)


def _opener_calls(fake) -> list:
    return [c["args"] for c in fake.calls() if c["cmd"] == "sudo" and "opener.py" in " ".join(c["args"])]


def _index(calls: list, cmd: str, *args: str, sudo: bool = True) -> int:
    for i, c in enumerate(calls):
        if c["cmd"] == cmd and c["args"][: len(args)] == list(args) and c["sudo"] == sudo:
            return i
    raise AssertionError(f"{cmd} {' '.join(args)} (sudo={sudo}) not called: {calls}")


def test_macos_sequence_unmountdisk_then_rdisk_write_then_eject(fake, not_root, images):
    fake.darwin("usb-stick")
    disk = fake.disk("rdisk2", STICK_SIZE)
    result = _run("--image", str(images["xz"]), "--device", "disk2", "--yes")
    assert result.exit_code == 0, result.output
    calls = fake.calls()
    # unmount (forced) and eject run as the user: macOS lets the console user do both
    unmount = _index(calls, "diskutil", "unmountDisk", "force", "/dev/disk2", sudo=False)
    opener = next(i for i, c in enumerate(calls) if "opener.py" in " ".join(c["args"]))
    eject = _index(calls, "diskutil", "eject", "/dev/disk2", sudo=False)
    assert unmount < opener < eject
    assert _opener_calls(fake)[0][-3:-1] == ["rw", "/dev/rdisk2"]  # the raw node, not /dev/disk2
    assert fake.mutating()[0] == "sudo -v"  # the password prompt comes before any progress bar
    with open(disk, "rb") as f:
        assert f.read(len(images["data"])) == images["data"]
    assert "ejected" in result.output


def test_macos_dd_runs_the_literal_bsd_dd_line(fake, not_root, images):
    fake.darwin("usb-stick")
    disk = fake.disk("rdisk2", STICK_SIZE)
    result = _run("--dd", "--image", str(images["gz"]), "--device", "/dev/disk2", "--yes")
    assert result.exit_code == 0, result.output
    dd = [c["args"] for c in fake.calls() if c["cmd"] == "sudo" and c["args"][:1] == ["dd"]]
    assert len(dd) == 1
    assert dd[0][1] == "bs=1m" and dd[0][3] == "of=/dev/rdisk2"
    temp = dd[0][2][len("if=") :]
    assert temp.endswith("pi.img") and not os.path.exists(temp)  # decompressed, then removed
    assert _opener_calls(fake)[0][-3:-1] == ["r", "/dev/rdisk2"]  # verify reads the card back
    with open(disk, "rb") as f:
        assert f.read(len(images["data"])) == images["data"]


def test_linux_sequence_umounts_partitions_writes_exclusively_then_ejects(fake, not_root, images):
    fake.linux("linux/lsblk-laptop-cards.json")
    disk = fake.disk("sda", 31914983424)
    result = _run("--image", str(images["zip"]), "--device", "sda", "--yes")
    assert result.exit_code == 0, result.output
    calls = fake.calls()
    umounts = [_index(calls, "umount", m) for m in ("/media/pi/bootfs", "/media/pi/rootfs")]
    opener = next(i for i, c in enumerate(calls) if "opener.py" in " ".join(c["args"]))
    eject = _index(calls, "eject", "/dev/sda")
    assert max(umounts) < opener < eject
    assert _opener_calls(fake)[0][-3:-1] == ["rwx", "/dev/sda"]  # O_EXCL on Linux
    with open(disk, "rb") as f:
        assert f.read(len(images["data"])) == images["data"]


def test_linux_dd_uses_gnu_block_size(fake, not_root, images):
    fake.linux("linux/lsblk-laptop-cards.json")
    fake.disk("sda", 31914983424)
    result = _run("--dd", "--no-verify", "--image", str(images["raw"]), "--device", "sda", "--yes")
    assert result.exit_code == 0, result.output
    dd = [c["args"] for c in fake.calls() if c["cmd"] == "sudo" and c["args"][:1] == ["dd"]]
    assert dd == [["dd", "bs=1M", f"if={images['raw']}", "of=/dev/sda"]]


def test_eject_failure_is_a_warning_not_an_error(fake, not_root, images):
    fake.darwin("usb-stick")
    fake.disk("rdisk2", STICK_SIZE)
    (fake.state / "fail-eject").write_text("")
    result = _run("--image", str(images["raw"]), "--device", "disk2", "--yes")
    assert result.exit_code == 0, result.output
    assert "remove the card by hand" in result.output


def test_unmount_failure_stops_before_writing(fake, not_root, images):
    fake.darwin("usb-stick")
    disk = fake.disk("rdisk2", STICK_SIZE)
    (fake.state / "fail-unmountDisk").write_text("")
    result = _run("--image", str(images["raw"]), "--device", "disk2", "--yes")
    assert result.exit_code == 1
    assert "unmountDisk" in result.output and "Traceback" not in result.output
    assert not _opener_calls(fake)
    with open(disk, "rb") as f:
        assert f.read(4096) == bytes(4096)


def test_ctrl_c_says_the_card_is_incomplete(fake, not_root, images, monkeypatch):
    fake.darwin("usb-stick")
    fake.disk("rdisk2", STICK_SIZE)

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(flasher, "open_and_copy", interrupted)
    result = _run("--image", str(images["raw"]), "--device", "disk2", "--yes")
    assert result.exit_code == 130
    assert "incomplete and will not boot" in result.output
    assert not [c for c in fake.calls() if c["args"][:1] == ["eject"]]


def test_file_target_needs_no_root_and_is_byte_identical(fake, images, tmp_path):
    fake.darwin("usb-stick")
    target = tmp_path / "out.img"
    result = _run("--image", str(images["xz"]), "--device", str(target), "--yes")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == images["data"]
    assert [c for c in fake.calls() if c["cmd"] in ("sudo", "diskutil")] == []


def test_image_larger_than_the_card_is_refused_up_front(fake, not_root, tmp_path):
    fake.darwin("usb-stick")
    huge = tmp_path / "huge.img"
    with open(huge, "wb") as f:
        f.truncate(STICK_SIZE + 1)
    result = _run("--image", str(huge), "--device", "disk2", "--yes")
    assert result.exit_code == 1 and "does not fit" in result.output
    assert fake.mutating() == []


@pytest.mark.parametrize("kind", ["raw", "xz", "gz", "zip"])
def test_every_image_kind_flashes_a_file_byte_for_byte(images, tmp_path, kind):
    target = tmp_path / "out.img"
    result = _run("--image", str(images[kind]), "--device", str(target), "--yes")
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == images["data"]


def test_dd_never_reuses_or_removes_a_folder_it_did_not_make(images, tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    stranger = tmp_path / f"appliance-flash-{os.getpid()}"
    stranger.mkdir()
    (stranger / "theirs").write_text("keep me")
    result = _run("--dd", "--image", str(images["xz"]), "--device", str(tmp_path / "o.img"), "--yes")
    assert result.exit_code == 1 and "Could not create" in result.output
    assert (stranger / "theirs").read_text() == "keep me"


def test_macos_unmount_refused_as_the_user_is_retried_through_sudo(fake, not_root, images):
    fake.darwin("usb-stick")
    fake.disk("rdisk2", STICK_SIZE)
    (fake.state / "user-unmountDisk").write_text("")  # this Mac wants root to unmount
    result = _run("--image", str(images["raw"]), "--device", "disk2", "--yes")
    assert result.exit_code == 0, result.output
    steps = fake.mutating()
    first = steps.index("diskutil unmountDisk force /dev/disk2")
    assert steps[first + 1] == "sudo diskutil unmountDisk force /dev/disk2"
    assert "diskutil eject /dev/disk2" in steps and "sudo diskutil eject /dev/disk2" not in steps
