"""Streaming an image onto an open target descriptor, in 1 MiB blocks.

A raw .img is copied without hashing, as fast as dd (readback.py then compares the card with
the file). A compressed image is hashed while it is written, because reading it again would
mean decompressing it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from appliance.flash.errors import WriteError
from appliance.flash.pipeline import BLOCK, Pipeline
from appliance.flash.source import ImageStream

__all__ = ["BLOCK", "WriteResult", "fill", "open_and_copy", "padded", "strategy", "write_stream"]
WRITEBACK = 16 * BLOCK  # hand the kernel this much to write out at a time


@dataclass
class WriteResult:
    """What a write did: image bytes written, their SHA-256 ("" until known), the time taken."""

    size: int
    sha256: str
    seconds: float


def fill(stream: ImageStream, buf: bytearray) -> int:
    """Fill buf from stream; return the bytes read (less than len(buf) only at the end)."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def padded(n: int, block_size: int) -> int:
    """Return n rounded up to a multiple of the device block size."""
    return -(-n // block_size) * block_size if block_size > 1 else n


def write_all(fd: int, data: memoryview, offset: int) -> None:
    """Write all of data at offset (pwrite: the target's position never matters)."""
    while data:
        n = os.pwrite(fd, data, offset)
        if n <= 0:
            raise OSError(28, "No space left on device")
        data, offset = data[n:], offset + n


def write_stream(
    stream: ImageStream,
    fd: int,
    *,
    block_size: int = 1,
    progress=None,
    hashing: bool = True,
    writeback: bool = False,
) -> WriteResult:
    """Write the image stream to fd in 1 MiB blocks (the last padded to block_size), fsync.

    With hashing (compressed images), reading, writing and hashing overlap in threads. Without
    it (a raw .img), a plain read-write loop like dd's is fastest: threads only add hand-offs.
    writeback (for disks) pushes data out as it goes, so the bar shows what reached the card.
    """
    start = time.monotonic()
    write = _write_overlapped if hashing else _write_plain
    size, sha = write(stream, fd, block_size, progress, WRITEBACK if writeback else 0)
    os.fsync(fd)
    return WriteResult(size, sha, time.monotonic() - start)


def _put_block(fd: int, buf: bytearray, n: int, block_size: int, offset: int, every: int) -> int:
    """Write n bytes of buf at offset, zero-padded to block_size; return the bytes written."""
    end = padded(n, block_size)
    buf[n:end] = bytes(end - n)  # raw devices take whole sectors only
    _write_block(fd, memoryview(buf)[:end], offset)
    if every and (offset + end) % every == 0:
        start_writeback(fd, offset + end - every, every)
    return end


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range out to the medium now, and let go of its cached pages.

    Without this, Linux keeps gigabytes of a card's data dirty in memory: the bar reaches 100%
    and the final fsync then takes minutes. Not used when copying a raw .img to a file, where
    the kernel's own batching is fastest. (macOS writes /dev/rdisk uncached; no posix_fadvise.)
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None:
        advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _write_plain(stream: ImageStream, fd: int, block_size: int, progress, every: int) -> tuple:
    """Copy block by block in this thread; return (image bytes, "")."""
    buf, offset, size = bytearray(BLOCK), 0, 0
    while True:
        n = fill(stream, buf)
        if n == 0:
            break
        offset += _put_block(fd, buf, n, block_size, offset, every)
        size += n
        if progress is not None:
            progress.update(n)
        if n < BLOCK:
            break
    return size, ""


def _write_overlapped(stream: ImageStream, fd: int, block_size: int, progress, every: int) -> tuple:
    """Read, write and hash in three threads; return (image bytes, SHA-256)."""
    offset, size = 0, 0
    with Pipeline(lambda buf: fill(stream, buf)) as pipe:
        for buf, n in pipe.blocks():
            if n == 0:
                break
            offset += _put_block(fd, buf, n, block_size, offset, every)
            size += n
            pipe.done_with(buf, n)
            if progress is not None:
                progress.update(n)
        return size, pipe.digest()


def _write_block(fd: int, data: memoryview, offset: int) -> None:
    """Write one block, turning OS errors into a message about the card."""
    try:
        write_all(fd, data, offset)
    except OSError as exc:
        if exc.errno == 28:
            raise WriteError(
                f"The target is full after {offset // BLOCK} MiB: the image does not fit; "
                "use a bigger card. The card is incomplete."
            ) from None
        raise WriteError(
            f"Writing failed at {offset // BLOCK} MiB ({exc.strerror or exc}): the card or the "
            "reader may be faulty, or the card was removed. The card is incomplete; try again "
            "or use another card."
        ) from None


def strategy(image_kind: str, to_device: bool) -> dict:
    """Return how to write an image: the keyword arguments for open_and_copy.

    Only a compressed image is hashed while written (a raw one is compared with its file
    afterwards). Data is pushed out early to a disk (honest progress), and while decompressing,
    when the medium would otherwise sit idle until the final fsync.
    """
    compressed = image_kind != "raw"
    return {"hashing": compressed, "writeback": to_device or compressed}


def open_and_copy(
    image_open: Callable[[], ImageStream],
    fd: int,
    *,
    block_size: int = 1,
    progress=None,
    hashing: bool = True,
    writeback: bool = False,
) -> WriteResult:
    """Open the image stream, write it to fd and close the stream."""
    stream = image_open()
    try:
        return write_stream(
            stream,
            fd,
            block_size=block_size,
            progress=progress,
            hashing=hashing,
            writeback=writeback,
        )
    finally:
        stream.close()
