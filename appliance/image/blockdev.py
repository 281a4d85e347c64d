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
RUN_BLOCKS = 256  # at most 1 MiB per write when flushing


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
        """Write every changed block back and sync it to the medium.

        Neighbouring blocks go out as one write of up to 1 MiB: wheels of an offline bundle
        are tens of MB, and an SD card takes one large write much faster than 4 KiB ones.
        """
        run: list[int] = []
        for index in sorted(self._dirty):
            if run and (index != run[-1] + 1 or len(run) == RUN_BLOCKS):
                self._write_run(run)
                run = []
            run.append(index)
        if run:
            self._write_run(run)
        self._dirty.clear()
        self._fh.flush()
        if self.writable:
            os.fsync(self._fh.fileno())

    def _write_run(self, run: list[int]) -> None:
        """Write consecutive cached blocks at once (an image's last block may be partial)."""
        data = b"".join(bytes(self._cache[i]) for i in run)
        end = (run[-1] + 1) * BLOCK
        if self.size and end > self.size:  # an image whose size is not a block multiple
            data = data[: max(0, self.size - run[0] * BLOCK)]
        self._fh.seek(run[0] * BLOCK)
        self._fh.write(data)

    def forget(self) -> None:
        """Drop the cache so the next reads come from the medium itself."""
        if self._dirty:
            raise RuntimeError("flush() before forget()")
        self._cache.clear()


def _size_of(fh: BinaryIO) -> int | None:
    """Return the size of a file or device in bytes, or None when it cannot be told."""
    try:
        st = os.fstat(fh.fileno())
    except (OSError, ValueError):  # a stream with no descriptor (peek's decompressed prefix)
        st = None
    if st is not None and stat.S_ISREG(st.st_mode):
        return st.st_size
    try:
        size = fh.seek(0, os.SEEK_END)
    except OSError:
        return None
    return size or None  # macOS raw devices answer 0: unknown, not empty
