"""A FAT's allocation table: cluster chains, allocation and the free count (FAT12/16/32)."""

from __future__ import annotations

import struct
from array import array

from .errors import FatError

EOC = {12: 0xFFF, 16: 0xFFFF, 32: 0x0FFFFFFF}  # the end-of-chain mark written here


class AllocationTable:
    """The first copy of the table, in memory; ``dirty`` once changed."""

    def __init__(self, data: bytes, kind: int, clusters: int) -> None:
        self.data = bytearray(data)
        self.kind, self.clusters = kind, clusters  # clusters: how many data clusters exist
        self.dirty = False
        self.hint = 2  # where the next search for a free cluster starts

    def get(self, n: int) -> int:
        """Return the entry of cluster ``n``: the next cluster, 0 if free, or an end mark."""
        if self.kind == 12:
            v = struct.unpack_from("<H", self.data, n + n // 2)[0]
            return v >> 4 if n & 1 else v & 0xFFF
        if self.kind == 16:
            return struct.unpack_from("<H", self.data, 2 * n)[0]
        return struct.unpack_from("<I", self.data, 4 * n)[0] & 0x0FFFFFFF

    def set(self, n: int, value: int) -> None:
        """Set the entry of cluster ``n`` (FAT32 keeps the entry's top four bits)."""
        self.dirty = True
        if self.kind == 12:
            pos = n + n // 2
            v = struct.unpack_from("<H", self.data, pos)[0]
            v = (v & 0x000F) | (value << 4) if n & 1 else (v & 0xF000) | value
            struct.pack_into("<H", self.data, pos, v)
        elif self.kind == 16:
            struct.pack_into("<H", self.data, 2 * n, value)
        else:
            old = struct.unpack_from("<I", self.data, 4 * n)[0]
            struct.pack_into("<I", self.data, 4 * n, (old & 0xF0000000) | value)

    def end(self, n: int) -> None:
        """Mark cluster ``n`` as the last of its chain."""
        self.set(n, EOC[self.kind])

    def chain(self, first: int) -> list[int]:
        """Return the clusters of a file or directory starting at ``first``."""
        out: list[int] = []
        n = first
        while 2 <= n < self.clusters + 2:
            out.append(n)
            if len(out) > self.clusters:
                raise FatError(
                    "a cluster chain loops; the boot partition is damaged "
                    "(run fsck.fat on it or write the image again)"
                )
            n = self.get(n)
        if n < EOC[self.kind] - 7 and out:
            raise FatError(
                f"a cluster chain points outside the filesystem (cluster {n}); "
                "the boot partition is damaged: write the image again"
            )
        return out

    def alloc(self, count: int) -> list[int]:
        """Return ``count`` free clusters, linked into one chain."""
        found: list[int] = []
        top = self.clusters + 2
        for n in list(range(self.hint, top)) + list(range(2, self.hint)):
            if len(found) == count:
                break
            if self.get(n) == 0:
                found.append(n)
        if len(found) < count:
            raise FatError("the boot partition is full; remove files from it or use a larger image")
        for i in range(len(found) - 1):  # no zip(): ruff wants strict=, Python 3.9 has none
            self.set(found[i], found[i + 1])
        if found:
            self.end(found[-1])
            self.hint = found[-1] + 1 if found[-1] + 1 < top else 2
        return found

    def free_count(self) -> int:
        """Return how many clusters are free."""
        if self.kind == 12:
            return sum(1 for n in range(2, self.clusters + 2) if self.get(n) == 0)
        table = array("H" if self.kind == 16 else "I")
        table.frombytes(bytes(self.data[: (self.clusters + 2) * table.itemsize]))
        if array("H", [1]).tobytes() != b"\x01\x00":
            table.byteswap()  # the table is little-endian on disk
        mask = 0xFFFF if self.kind == 16 else 0x0FFFFFFF
        return sum(1 for v in table[2:] if not v & mask)
