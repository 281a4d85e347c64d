"""Look into an image's boot partition before it is written: its first-boot format and room.

``appliance flash --bundle`` must know which Python the wheels have to fit, and whether they
fit, before the first byte goes to the card. The boot partition's directory and allocation
table sit in the first few MB of a Raspberry Pi OS image, so the image is decompressed only
that far (into memory, up to ``LIMIT``), never to disk and never whole.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import boot_format
from .blockdev import BlockDevice
from .errors import ImageError
from .fat import FatVolume
from .mbr import boot_partition

LIMIT = 64 * 1024 * 1024  # a Pi OS boot partition's FATs and root directory end after ~6 MB
CHUNK = 1 << 20


@dataclass(frozen=True)
class BootPeek:
    """What the image's boot partition says, read before writing."""

    format: str  # boot_format.FIRSTRUN or CLOUD_INIT, as its files suggest
    why: str
    volume: Any  # bundle.BootSpace of the partition


class _TooFar(Exception):
    """The boot partition's directory lies further into the image than we decompress."""


class _Prefix(io.RawIOBase):
    """The start of a (decompressing) stream, seekable within what has been read so far."""

    def __init__(self, stream: Any, limit: int) -> None:
        self._stream, self._limit = stream, limit
        self._data = bytearray()
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_END:
            raise OSError("the size of a stream is not known before it is read")
        self._pos = offset if whence == io.SEEK_SET else self._pos + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def readinto(self, buf: Any) -> int:
        want = self._pos + len(buf)
        while len(self._data) < want and not self._eof:
            if len(self._data) >= self._limit:
                raise _TooFar()
            chunk = bytearray(CHUNK)
            n = self._stream.readinto(chunk) or 0
            self._eof = n == 0
            self._data += chunk[:n]
        got = self._data[self._pos : want]
        buf[: len(got)] = got
        self._pos += len(got)
        return len(got)


def peek_stream(open_stream: Callable[[], Any], limit: int = LIMIT) -> BootPeek | None:
    """Return the boot partition's format and room, or None when it lies beyond ``limit``.

    ``open_stream`` returns a fresh stream of the uncompressed image (with ``readinto``).
    An image that is not a Raspberry Pi OS image raises ImageError, as customizing would.
    """
    from .bundle import space_of

    stream = open_stream()
    try:
        dev = BlockDevice(_Prefix(stream, limit))  # type: ignore[arg-type]
        vol = FatVolume(dev, boot_partition(dev).start)
        fmt, why = boot_format.detect(vol)
        return BootPeek(fmt, why, space_of(vol))
    except _TooFar:
        return None
    finally:
        stream.close()


def peek_path(path: str) -> BootPeek | None:
    """Return what the boot partition of an image file or card says; None when unreadable."""
    try:
        return peek_stream(lambda: open(path, "rb", buffering=0))
    except (OSError, ImageError):
        return None  # customizing it says what is wrong, in its own words
