"""Aligned, cached byte access to an image file or a raw disk device.

Raw devices (macOS ``/dev/rdiskN``, Linux ``/dev/sdX``) accept only reads and writes of
whole, aligned blocks, so every access here is a read-modify-write of 4 KiB blocks held
in a small write-back cache; ``flush()`` writes the changed blocks and syncs.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

BLOCK = 4096  # a multiple of every sector size an SD card or image uses


class BlockDevice:
    """Byte-addressed reads and writes over a file or device, aligned to ``BLOCK``."""

    def __init__(self, fh: BinaryIO, writable: bool = False) -> None:
        self._fh = fh
        self.writable = writable
        self.size = _size_of(fh)
        self._cache: dict[int, bytearray] = {}
        self._dirty: set[int] = set()

    def _block(self, index: int) -> bytearray:
        """Return the cached block ``index``, reading it on first use."""
        block = self._cache.get(index)
        if block is None:
            self._fh.seek(index * BLOCK)
            data = self._fh.read(BLOCK) or b""
            block = bytearray(data.ljust(BLOCK, b"\0"))
            self._cache[index] = block
        return block

    def read(self, offset: int, length: int) -> bytes:
        """Return ``length`` bytes at ``offset``."""
        out = bytearray()
        while length > 0:
            index, start = divmod(offset, BLOCK)
            take = min(length, BLOCK - start)
            out += self._block(index)[start : start + take]
            offset, length = offset + take, length - take
        return bytes(out)

    def write(self, offset: int, data: bytes) -> None:
        """Replace the bytes at ``offset`` with ``data`` (in the cache until ``flush``)."""
        if not self.writable:
            raise PermissionError("opened read-only")
        pos = 0
        while pos < len(data):
            index, start = divmod(offset + pos, BLOCK)
            take = min(len(data) - pos, BLOCK - start)
            self._block(index)[start : start + take] = data[pos : pos + take]
            self._dirty.add(index)
            pos += take

    def flush(self) -> None:
        """Write every changed block back and sync it to the medium."""
        for index in sorted(self._dirty):
            block = self._cache[index]
            end = (index + 1) * BLOCK
            if self.size and end > self.size:  # an image whose size is not a block multiple
                block = block[: max(0, self.size - index * BLOCK)]
            self._fh.seek(index * BLOCK)
            self._fh.write(bytes(block))
        self._dirty.clear()
        self._fh.flush()
        if self.writable:
            os.fsync(self._fh.fileno())

    def forget(self) -> None:
        """Drop the cache so the next reads come from the medium itself."""
        if self._dirty:
            raise RuntimeError("flush() before forget()")
        self._cache.clear()


def _size_of(fh: BinaryIO) -> int | None:
    """Return the size of a file or device in bytes, or None when it cannot be told."""
    st = os.fstat(fh.fileno())
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    try:
        size = fh.seek(0, os.SEEK_END)
    except OSError:
        return None
    return size or None  # macOS raw devices answer 0: unknown, not empty
