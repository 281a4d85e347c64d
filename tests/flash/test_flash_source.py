"""Image sources: kinds by magic, sizes, streaming, and refusing damaged files early."""

from __future__ import annotations

import bz2
import lzma
import shutil
import zipfile

import pytest

from appliance.flash import source, xzindex
from appliance.flash.errors import ImageError
from appliance.flash.writer import BLOCK, fill


def _read_all(image: source.Image) -> bytes:
    stream, out, buf = image.open(), [], bytearray(BLOCK)
    try:
        while True:
            n = fill(stream, buf)
            out.append(bytes(buf[:n]))
            if n < BLOCK:
                return b"".join(out)
    finally:
        stream.close()


@pytest.mark.parametrize("kind", ["raw", "xz", "gz", "zip"])
def test_inspect_streams_the_same_image_bytes(images, kind):
    image = source.inspect(str(images[kind]))
    assert image.kind == kind
    assert _read_all(image) == images["data"]


@pytest.mark.parametrize("kind, size_known", [("raw", True), ("xz", True), ("zip", True), ("gz", False)])
def test_inspect_knows_the_uncompressed_size_when_the_format_tells(images, kind, size_known):
    image = source.inspect(str(images[kind]))
    assert image.size == (len(images["data"]) if size_known else None)


def test_kind_comes_from_magic_not_the_name(images, tmp_path):
    misnamed = tmp_path / "image.img"
    shutil.copy(images["xz"], misnamed)
    assert source.inspect(str(misnamed)).kind == "xz"


def test_truncated_xz_is_refused_before_writing(images, tmp_path):
    cut = tmp_path / "cut.img.xz"
    cut.write_bytes(images["xz"].read_bytes()[:-4096])
    with pytest.raises(ImageError, match="damaged or incomplete.*Download it again"):
        source.inspect(str(cut))


def test_damaged_gz_is_reported_while_reading(images, tmp_path):
    bad = tmp_path / "bad.img.gz"
    data = bytearray(images["gz"].read_bytes())
    bad.write_bytes(bytes(data[: len(data) // 2]))
    image = source.inspect(str(bad))
    with pytest.raises(source.DATA_ERRORS):
        _read_all(image)
    assert "card is incomplete" in str(source.damaged(image, EOFError("cut")))


def test_zip_with_two_images_is_refused(images, tmp_path):
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        z.writestr("a.img", b"a" * 10)
        z.writestr("b.img", b"b" * 10)
    with pytest.raises(ImageError, match="exactly one disk image"):
        source.inspect(str(two))


def test_truncated_zip_is_refused(images, tmp_path):
    cut = tmp_path / "cut.zip"
    cut.write_bytes(images["zip"].read_bytes()[:-200])
    with pytest.raises(ImageError, match="not a complete zip"):
        source.inspect(str(cut))


@pytest.mark.parametrize("content, message", [(b"", "is empty"), (None, "was not found")])
def test_missing_or_empty_image_is_refused(tmp_path, content, message):
    path = tmp_path / "x.img"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        source.inspect(str(path))


def test_unsupported_archive_says_decompress_first(tmp_path):
    path = tmp_path / "x.img.bz2"
    path.write_bytes(bz2.compress(b"x" * 1000))
    with pytest.raises(ImageError, match="decompress it to .img first"):
        source.inspect(str(path))


def test_xz_index_sums_concatenated_streams_with_padding(tmp_path):
    path = tmp_path / "multi.xz"
    path.write_bytes(lzma.compress(b"a" * 5000) + b"\0" * 8 + lzma.compress(b"b" * 7000))
    with open(path, "rb") as f:
        assert xzindex.uncompressed_size(f) == 12000
    assert _read_all(source.inspect(str(path))) == b"a" * 5000 + b"b" * 7000


def test_xz_index_rejects_a_damaged_index(images, tmp_path):
    data = bytearray(images["xz"].read_bytes())
    data[-20] ^= 0xFF  # inside the index: its CRC32 no longer matches
    path = tmp_path / "bad.xz"
    path.write_bytes(bytes(data))
    with open(path, "rb") as f, pytest.raises(xzindex.XzIndexError):
        xzindex.uncompressed_size(f)
