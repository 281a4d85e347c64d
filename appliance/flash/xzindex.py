"""Read an .xz file's index from its end: the uncompressed size, and a cheap truncation check.

A download cut short has no valid stream footer, so it is refused before the card is touched,
and the size gives the progress bar its total.
"""

from __future__ import annotations

import zlib
from typing import BinaryIO

MAGIC = b"\xfd7zXZ\x00"
FOOTER_MAGIC = b"YZ"


class XzIndexError(ValueError):
    """The file does not end like a complete .xz file."""


def _read_at(f: BinaryIO, offset: int, size: int) -> bytes:
    """Return exactly size bytes at offset, or raise when the file is too short."""
    if offset < 0:
        raise XzIndexError("the index points before the start of the file")
    f.seek(offset)
    data = f.read(size)
    if len(data) != size:
        raise XzIndexError("the file ends inside the index")
    return data


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Return an xz multibyte integer at pos and the position after it."""
    value = 0
    for i in range(9):
        if pos + i >= len(buf):
            raise XzIndexError("the index ends inside a number")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if not byte & 0x80:
            return value, pos + i + 1
    raise XzIndexError("a number in the index is too long")


def _crc_ok(data: bytes, stored: bytes) -> bool:
    """Return True when CRC32 of data equals the little-endian stored value."""
    return zlib.crc32(data) == int.from_bytes(stored, "little")


def _parse_index(index: bytes) -> tuple[int, int]:
    """Return (bytes of blocks, uncompressed bytes) from one stream's index."""
    if index[:1] != b"\x00" or not _crc_ok(index[:-4], index[-4:]):
        raise XzIndexError("the index is damaged")
    count, pos = _varint(index, 1)
    blocks = plain = 0
    for _ in range(count):
        unpadded, pos = _varint(index, pos)
        size, pos = _varint(index, pos)
        blocks += (unpadded + 3) & ~3
        plain += size
    return blocks, plain


def _stream_before(f: BinaryIO, end: int) -> tuple[int, int]:
    """Return (start offset, uncompressed size) of the stream that ends at end."""
    footer = _read_at(f, end - 12, 12)
    if footer[10:12] != FOOTER_MAGIC or not _crc_ok(footer[4:10], footer[:4]):
        raise XzIndexError("there is no stream footer at the end")
    backward = (int.from_bytes(footer[4:8], "little") + 1) * 4
    index_start = end - 12 - backward
    blocks, plain = _parse_index(_read_at(f, index_start, backward))
    start = index_start - blocks - 12
    header = _read_at(f, start, 12)
    if header[:6] != MAGIC or header[6:8] != footer[8:10]:
        raise XzIndexError("the stream header does not match its footer")
    return start, plain


def uncompressed_size(f: BinaryIO) -> int:
    """Return the total uncompressed size of an .xz file; raise XzIndexError if it is cut short."""
    end = f.seek(0, 2)
    total = 0
    while end > 0:
        while end >= 4 and _read_at(f, end - 4, 4) == b"\x00" * 4:
            end -= 4  # stream padding between or after streams
        if end < 24:
            raise XzIndexError("the file is too short to be a complete .xz file")
        end, plain = _stream_before(f, end)
        total += plain
    return total
