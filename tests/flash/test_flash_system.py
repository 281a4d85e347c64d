"""Small outside-world helpers: platform choice, sudo prefix, commands, progress, opener."""

from __future__ import annotations

import errno
import io

import pytest

from appliance.flash import opener, progress, rawdev, system
from appliance.flash.errors import CommandError, UnsupportedPlatformError


@pytest.mark.parametrize("forced", ["darwin", "linux", " Darwin "])
def test_platform_override(monkeypatch, forced):
    monkeypatch.setenv(system.PLATFORM_ENV, forced)
    assert system.platform_name() == forced.strip().lower()


def test_platform_override_rejects_unknown(monkeypatch):
    monkeypatch.setenv(system.PLATFORM_ENV, "windows")
    with pytest.raises(UnsupportedPlatformError, match="darwin or linux"):
        system.platform_name()


def test_as_root_adds_sudo_only_for_users(monkeypatch):
    monkeypatch.setattr(system, "is_root", lambda: False)
    assert system.as_root(["diskutil", "eject", "/dev/disk4"]) == [
        "sudo",
        "diskutil",
        "eject",
        "/dev/disk4",
    ]
    monkeypatch.setattr(system, "is_root", lambda: True)
    assert system.as_root(["umount", "/media/x"]) == ["umount", "/media/x"]


def test_run_explains_missing_and_failing_commands():
    with pytest.raises(CommandError, match="was not found"):
        system.run(["appliance-no-such-command"])
    with pytest.raises(CommandError, match=r"failed \(exit 3\): boom"):
        system.run(["sh", "-c", "echo boom >&2; exit 3"])


def test_plain_progress_shows_rate_and_time_left(monkeypatch):
    out = io.StringIO()
    monkeypatch.setattr(progress.sys, "stderr", out)
    bar = progress.PlainProgress(4 << 20, "Writing", interval=0)
    bar.update(1 << 20)
    bar.close()
    line = out.getvalue().strip().splitlines()[-1]
    assert "Writing: 1.0 MiB of 4.0 MiB (25%) at" in line and "left" in line


def test_progress_uses_tqdm_when_asked_and_installed(monkeypatch):
    tqdm = pytest.importorskip("tqdm")
    monkeypatch.setenv(progress.PROGRESS_ENV, "tqdm")
    bar = progress.bar(10, "x")
    try:
        assert isinstance(bar, tqdm.tqdm)
    finally:
        bar.close()
    monkeypatch.setenv(progress.PROGRESS_ENV, "none")
    assert isinstance(progress.bar(10, "x"), progress.NoProgress)


def test_opener_answer_turns_errors_into_oserror():
    with pytest.raises(OSError) as info:
        rawdev._answer("/dev/rdisk4", b"ERR 1 Operation not permitted", [])
    assert info.value.errno == errno.EPERM and info.value.filename == "/dev/rdisk4"
    with pytest.raises(CommandError):
        rawdev._answer("/dev/rdisk4", b"garbage", [])


def test_opener_refuses_bad_usage():
    assert opener.main(["write", "/dev/x", "/tmp/s"]) == 2


def test_interrupt_before_writing_says_the_card_is_unchanged(tmp_path, monkeypatch, images):
    from appliance.flash import download, plan, prepare
    from appliance.flash.errors import FlashInterrupted
    from appliance.flash.flasher import Flasher

    image, _ = prepare.image(str(images["raw"]), None)
    platform, target = prepare.target(str(tmp_path / "out.img"), force=False)
    steps = [plan.Step("download", "download")]
    flasher = Flasher(image, target, platform, plan.Options(), say=lambda m: None)

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(download, "fetch_image", interrupted)
    flasher.os_image = object()
    with pytest.raises(FlashInterrupted, match="before anything was written"):
        flasher.run(steps)
