"""Streaming write and read-back verify against real file targets."""

from __future__ import annotations

import io
import os
import threading

import pytest

from appliance.flash import source, writer
from appliance.flash.errors import WriteError


def _write(image_path, target, block_size: int = 1) -> writer.WriteResult:
    image = source.inspect(str(image_path))
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        return writer.open_and_copy(image.open, fd, block_size=block_size)
    finally:
        os.close(fd)


@pytest.mark.parametrize("kind", ["raw", "xz", "gz", "zip"])
def test_write_stream_gives_a_byte_identical_target(images, tmp_path, kind):
    target = tmp_path / "card.img"
    result = _write(images[kind], target)
    assert target.read_bytes() == images["data"]
    assert result.size == len(images["data"])


def test_write_pads_the_last_block_to_the_device_block_size(images, tmp_path):
    target = tmp_path / "card.img"
    result = _write(images["xz"], target, block_size=512)
    written = target.read_bytes()
    assert len(written) == writer.padded(len(images["data"]), 512)
    assert len(written) % 512 == 0
    assert written[: result.size] == images["data"]
    assert written[result.size :] == bytes(len(written) - result.size)


def test_sha256_matches_the_image(images, tmp_path):
    import hashlib

    result = _write(images["zip"], tmp_path / "card.img")
    assert result.sha256 == hashlib.sha256(images["data"]).hexdigest()


def test_read_errors_reach_the_caller_and_stop_the_threads(tmp_path):
    class Broken(io.RawIOBase):
        calls = 0

        def readinto(self, buf):
            Broken.calls += 1
            if Broken.calls > 3:
                raise EOFError("cut short")
            buf[:1000] = b"x" * 1000
            return 1000

    before = threading.active_count()
    fd = os.open(tmp_path / "t.img", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        with pytest.raises(EOFError):
            writer.write_stream(Broken(), fd)
    finally:
        os.close(fd)
    assert threading.active_count() == before


def test_write_error_says_the_card_is_incomplete(tmp_path):
    fd = os.open(tmp_path / "t.img", os.O_RDONLY | os.O_CREAT, 0o644)  # not writable
    try:
        with pytest.raises(WriteError, match="card is incomplete"):
            writer.write_stream(io.BytesIO(b"x" * 5000), fd)
    finally:
        os.close(fd)


def test_empty_and_exact_block_multiple_images(tmp_path):
    for data in (b"", b"\x01" * (2 * writer.BLOCK)):
        fd = os.open(tmp_path / "t.img", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            result = writer.write_stream(io.BytesIO(data), fd)
            assert result.size == len(data)
        finally:
            os.close(fd)
        assert (tmp_path / "t.img").read_bytes() == data


@pytest.mark.parametrize(
    "kind, to_device, expected",
    [
        ("raw", False, {"hashing": False, "writeback": False}),
        ("raw", True, {"hashing": False, "writeback": True}),
        ("xz", False, {"hashing": True, "writeback": True}),
    ],
)
def test_strategy_hashes_compressed_images_and_pushes_data_out_early(kind, to_device, expected):
    assert writer.strategy(kind, to_device) == expected


def test_writeback_every_16_mib_keeps_the_bytes(tmp_path):
    data = bytes(range(256)) * (17 * writer.BLOCK // 256 + 3)
    fd = os.open(tmp_path / "t.img", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        result = writer.write_stream(io.BytesIO(data), fd, writeback=True)
    finally:
        os.close(fd)
    assert result.size == len(data) and (tmp_path / "t.img").read_bytes() == data
