"""`appliance flash --config`: the image streams to the target, is verified, then its FAT is
customized through the flasher's open descriptor and read back (BRIEF 9)."""

from __future__ import annotations

import hashlib
import lzma

from click.testing import CliRunner
from image_support import Image

from appliance.flash.cli import flash


def test_image_flash_with_config_bakes_the_appliance_into_the_written_target(bookworm, secrets, tmp_path):
    xz = tmp_path / "raspios.img.xz"
    original = bookworm.path.read_bytes()
    xz.write_bytes(lzma.compress(original, preset=0))
    target = tmp_path / "card.img"
    result = CliRunner().invoke(
        flash,
        ["--image", str(xz), "--device", str(target), "--yes", "--config", str(secrets.config), "--no-eject"],
    )
    assert result.exit_code == 0, result.output
    card = Image(target, bookworm.offset, bookworm.fat)
    assert card.mtype("appliance/appliance.toml") == secrets.config.read_bytes()
    assert b"systemd.run=/boot/firstrun.sh" in card.mtype("cmdline.txt")
    assert card.mtype("cmdline.txt").count(b"\n") <= 1
    # only the boot partition changed: the root filesystem is byte-identical to the image
    root = slice(bookworm.offset + 64 * 1024 * 1024, None)
    assert hashlib.sha256(target.read_bytes()[root]).digest() == hashlib.sha256(original[root]).digest()
    card.fsck(tmp_path)


def test_image_flash_refuses_to_write_an_image_onto_itself(bookworm):
    before = bookworm.path.read_bytes()
    result = CliRunner().invoke(
        flash, ["--image", str(bookworm.path), "--device", str(bookworm.path), "--yes"]
    )
    assert result.exit_code == 1 and "the image file itself" in result.output
    assert bookworm.path.read_bytes() == before


def test_image_flash_without_config_writes_the_image_unchanged(bookworm, tmp_path):
    target = tmp_path / "written.img"
    result = CliRunner().invoke(
        flash, ["--image", str(bookworm.path), "--device", str(target), "--yes", "--no-eject"]
    )
    assert result.exit_code == 0, result.output
    assert target.read_bytes()[: bookworm.path.stat().st_size] == bookworm.path.read_bytes()
