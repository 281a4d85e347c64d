"""Reading the target back: SHA-256 after a compressed write, block compare after a raw one."""

from __future__ import annotations

import io
import os

import pytest

from appliance.flash import readback, source, writer
from appliance.flash.errors import VerifyError


def _write(image_path, target, block_size: int = 1, hashing: bool = True) -> writer.WriteResult:
    image = source.inspect(str(image_path))
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return writer.open_and_copy(image.open, fd, block_size=block_size, hashing=hashing)
    finally:
        os.close(fd)


def test_verify_passes_on_an_intact_target(images, tmp_path):
    target = tmp_path / "card.img"
    result = _write(images["raw"], target)
    fd = os.open(target, os.O_RDONLY)
    try:
        assert readback.verify(fd, result) >= 0
    finally:
        os.close(fd)


def test_verify_catches_a_byte_flipped_between_write_and_verify(images, tmp_path):
    target = tmp_path / "card.img"
    result = _write(images["gz"], target)
    with open(target, "r+b") as f:
        f.seek(len(images["data"]) // 2)
        byte = f.read(1)
        f.seek(-1, io.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0x01]))
    fd = os.open(target, os.O_RDONLY)
    try:
        with pytest.raises(VerifyError, match="does not read back as written"):
            readback.verify(fd, result, block_size=512)
    finally:
        os.close(fd)


def test_raw_image_is_copied_unhashed_and_hashed_during_verify(images, tmp_path):
    import hashlib

    image = source.inspect(str(images["raw"]))
    target = tmp_path / "card.img"
    fd = os.open(target, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        result = writer.open_and_copy(image.open, fd, hashing=False)
        assert result.sha256 == ""
        readback.verify(fd, result, image_path=image.path)
        assert result.sha256 == hashlib.sha256(images["data"]).hexdigest()
        os.pwrite(fd, bytes([images["data"][12345] ^ 1]), 12345)  # corrupt one byte
        result.sha256 = ""
        with pytest.raises(VerifyError):
            readback.verify(fd, result, image_path=image.path)
    finally:
        os.close(fd)


def test_raw_mismatch_names_where_the_card_differs(images, tmp_path):
    target = tmp_path / "card.img"
    result = _write(images["raw"], target, hashing=False)
    data = bytearray(target.read_bytes())
    data[(2 << 20) + 7] ^= 0x80  # inside the third MiB
    target.write_bytes(bytes(data))
    fd = os.open(target, os.O_RDONLY)
    try:
        with pytest.raises(VerifyError, match="differs from the image in MiB 2"):
            readback.verify(fd, result, image_path=str(images["raw"]))
    finally:
        os.close(fd)
