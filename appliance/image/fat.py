"""Read and write files on a FAT12/16/32 filesystem inside an image, without mounting it.

Only what customizing a boot partition needs: look up, read, write, delete files and make
directories, with case-insensitive names (see ``fatdir``). Freed clusters are zeroed, so a
secret that is rewritten or deleted does not linger in free space.
"""

from __future__ import annotations

import struct
import time

from . import fatdir
from .blockdev import BlockDevice
from .errors import FatError
from .fatdir import ATTR_ARCHIVE, ATTR_DIRECTORY, SLOT, Entry
from .fattable import AllocationTable


class FatVolume:
    """A FAT filesystem starting at byte ``offset`` of a block device."""

    def __init__(self, dev: BlockDevice, offset: int, now: float | None = None) -> None:
        self.dev, self.offset, self.now = dev, offset, now
        boot = dev.read(offset, 512)
        if boot[510:512] != b"\x55\xaa":
            raise FatError(
                "the boot partition holds no FAT filesystem (no boot sector "
                "signature); the image may be damaged: download it again"
            )
        self._parse_bpb(boot)
        self.table = AllocationTable(dev.read(self._fat_start, self._fat_bytes), self.kind, self.clusters)

    def _parse_bpb(self, b: bytes) -> None:
        bps, spc, reserved, nfats, root_entries, total16 = struct.unpack_from("<HBHBHH", b, 11)
        (fat16,) = struct.unpack_from("<H", b, 22)
        (
            total32,
            fat32,
        ) = struct.unpack_from("<II", b, 32)
        if bps not in (512, 1024, 2048, 4096) or spc == 0 or nfats == 0:
            raise FatError(
                "the boot partition's FAT boot sector is invalid; the image may be damaged: download it again"
            )
        fat_sectors = fat16 or fat32
        total = total16 or total32
        root_sectors = (root_entries * SLOT + bps - 1) // bps
        first_data = reserved + nfats * fat_sectors + root_sectors
        self.bps, self.spc, self.nfats = bps, spc, nfats
        self.cluster_size = bps * spc
        self.clusters = (total - first_data) // spc
        self.kind = 12 if self.clusters < 4085 else 16 if self.clusters < 65525 else 32
        self._fat_start = self.offset + reserved * bps
        self._fat_bytes = fat_sectors * bps
        self._root_start = self.offset + (reserved + nfats * fat_sectors) * bps
        self._root_entries = root_entries
        self._data_start = self.offset + first_data * bps
        self.root_cluster = struct.unpack_from("<I", b, 44)[0] if self.kind == 32 else 0
        self._fsinfo = struct.unpack_from("<H", b, 48)[0] if self.kind == 32 else 0

    def chain(self, first: int) -> list[int]:
        """Return the clusters of a file or directory starting at ``first``."""
        return self.table.chain(first)

    def free_clusters(self) -> int:
        """Return how many clusters are free."""
        return self.table.free_count()

    def _free(self, clusters: list[int]) -> None:
        zero = bytes(self.cluster_size)
        for n in clusters:
            self.dev.write(self._cluster_at(n), zero)  # wipe: secrets must not linger
            self.table.set(n, 0)

    # -- data ---------------------------------------------------------------------------

    def _cluster_at(self, n: int) -> int:
        return self._data_start + (n - 2) * self.cluster_size

    def _read_clusters(self, clusters: list[int], size: int) -> bytes:
        data = b"".join(self.dev.read(self._cluster_at(n), self.cluster_size) for n in clusters)
        return data[:size]

    def _write_clusters(self, clusters: list[int], data: bytes) -> None:
        cs = self.cluster_size
        for i, n in enumerate(clusters):
            self.dev.write(self._cluster_at(n), data[i * cs : (i + 1) * cs].ljust(cs, b"\0"))

    def _resize(self, first: int, count: int) -> list[int]:
        """Return a chain of ``count`` clusters reusing the one at ``first``."""
        old = self.chain(first) if first else []
        if count <= len(old):
            self._free(old[count:])
            if count:
                self.table.end(old[count - 1])
            return old[:count]
        new = self.table.alloc(count - len(old))
        if old:
            self.table.set(old[-1], new[0])
        return old + new

    # -- directories --------------------------------------------------------------------

    def _dir_slots(self, cluster: int) -> list[int]:
        if cluster == 0:  # FAT12/16's fixed root directory
            return [self._root_start + i * SLOT for i in range(self._root_entries)]
        per = self.cluster_size // SLOT
        return [self._cluster_at(n) + i * SLOT for n in self.chain(cluster) for i in range(per)]

    def _dir_raw(self, cluster: int) -> tuple[bytes, list[int]]:
        if cluster == 0:
            raw = self.dev.read(self._root_start, self._root_entries * SLOT)
        else:
            raw = b"".join(self.dev.read(self._cluster_at(n), self.cluster_size) for n in self.chain(cluster))
        return raw, self._dir_slots(cluster)

    def listdir(self, path: str = "/") -> list[Entry]:
        """Return the entries of the directory at ``path``."""
        return fatdir.parse(self._dir_raw(self._dir_cluster(path))[0])[0]

    def _dir_cluster(self, path: str) -> int:
        cluster = self.root_cluster
        for part in _parts(path):
            entry = self._lookup(cluster, part)
            if entry is None or not entry.is_dir:
                raise FileNotFoundError(f"no directory {path} on the boot partition")
            cluster = entry.cluster
        return cluster

    def _lookup(self, cluster: int, name: str) -> Entry | None:
        for entry in fatdir.parse(self._dir_raw(cluster)[0])[0]:
            if entry.matches(name):
                return entry
        return None

    def _split(self, path: str) -> tuple[int, str]:
        parts = _parts(path)
        if not parts:
            raise FatError("a file path on the boot partition needs a name")
        return self._dir_cluster("/".join(parts[:-1])), parts[-1]

    def find(self, path: str) -> Entry | None:
        """Return the entry at ``path`` (any case, any name form), or None."""
        try:
            parent, name = self._split(path)
        except FileNotFoundError:
            return None
        return self._lookup(parent, name)

    def read(self, path: str) -> bytes:
        """Return the contents of the file at ``path``."""
        entry = self.find(path)
        if entry is None or entry.is_dir:
            raise FileNotFoundError(f"no file {path} on the boot partition")
        return self._read_clusters(self.chain(entry.cluster), entry.size)

    def write(self, path: str, data: bytes) -> Entry:
        """Create or replace the file at ``path``; an existing file keeps its stored name."""
        parent, name = self._split(path)
        entry = self._lookup(parent, name)
        count = -(-len(data) // self.cluster_size)
        if entry is None:
            clusters = self.table.alloc(count)
            self._write_clusters(clusters, data)
            return self._add(parent, name, ATTR_ARCHIVE, clusters[0] if clusters else 0, len(data))
        if entry.is_dir:
            raise FatError(f"{path} is a directory on the boot partition, not a file")
        clusters = self._resize(entry.cluster, count)
        self._write_clusters(clusters, data)
        first = clusters[0] if clusters else 0
        offset = self._dir_slots(parent)[entry.slots[-1]]
        slot = self.dev.read(offset, SLOT)
        self.dev.write(offset, fatdir.update_short(slot, first, len(data), self._time()))
        entry.cluster, entry.size = first, len(data)
        return entry

    def delete(self, path: str) -> bool:
        """Delete the file at ``path``; return False when there was none."""
        entry = self.find(path)
        if entry is None:
            return False
        if entry.is_dir:
            raise FatError(f"{path} is a directory; only files are deleted")
        parent, _ = self._split(path)
        offsets = self._dir_slots(parent)
        for index in entry.slots:
            self.dev.write(offsets[index], bytes([fatdir.FREE]))
        self._free(self.chain(entry.cluster) if entry.cluster else [])
        return True

    def rmdir(self, path: str) -> bool:
        """Delete the empty directory at ``path``; return False when there was none."""
        entry = self.find(path)
        if entry is None:
            return False
        if not entry.is_dir:
            raise FatError(f"{path} is a file on the boot partition, not a directory")
        if self.listdir(path):
            raise FatError(f"{path} on the boot partition is not empty")
        parent, _ = self._split(path)
        offsets = self._dir_slots(parent)
        for index in entry.slots:
            self.dev.write(offsets[index], bytes([fatdir.FREE]))
        self._free(self.chain(entry.cluster))
        return True

    def makedirs(self, path: str) -> None:
        """Create the directory at ``path`` and any missing parents."""
        cluster = self.root_cluster
        for part in _parts(path):
            entry = self._lookup(cluster, part)
            if entry is None:
                entry = self._mkdir(cluster, part)
            elif not entry.is_dir:
                raise FatError(f"{part} exists on the boot partition and is not a directory")
            cluster = entry.cluster

    def _mkdir(self, parent: int, name: str) -> Entry:
        new = self.table.alloc(1)[0]
        now = self._time()
        dots = fatdir.encode_short(b".          ", ATTR_DIRECTORY, new, 0, now) + fatdir.encode_short(
            b"..         ", ATTR_DIRECTORY, 0 if parent == self.root_cluster else parent, 0, now
        )
        self._write_clusters([new], dots)
        return self._add(parent, name, ATTR_DIRECTORY, new, 0)

    def _add(self, parent: int, name: str, attr: int, cluster: int, size: int) -> Entry:
        raw, _ = self._dir_raw(parent)
        entries, end = fatdir.parse(raw)
        short = fatdir.plain_short(name)
        slots: list[bytes] = []
        if short is None:
            short = fatdir.make_short(name, [e.short for e in entries])
            slots = fatdir.encode_long(name, short)
        slots.append(fatdir.encode_short(short, attr, cluster, size, self._time()))
        start = self._free_run(parent, raw, end, len(slots))
        offsets = self._dir_slots(parent)
        for i, slot in enumerate(slots):
            self.dev.write(offsets[start + i], slot)
        after = start + len(slots)
        if after > end and after < len(offsets):  # keep the end-of-directory marker
            self.dev.write(offsets[after], bytes([fatdir.END]))
        return Entry(name, short, attr, cluster, size, list(range(start, after)))

    def _free_run(self, parent: int, raw: bytes, end: int, count: int) -> int:
        """Return the first of ``count`` free slots in a row, growing the directory if needed."""
        while True:
            run = 0
            for i in range(len(raw) // SLOT):
                free = i >= end or raw[i * SLOT] == fatdir.FREE
                run = run + 1 if free else 0
                if run == count:
                    return i - count + 1
            if parent == 0:
                raise FatError("the boot partition's root directory is full; remove files from it")
            grown = self._resize(parent, len(self.chain(parent)) + 1)
            self._write_clusters(grown[-1:], b"")
            raw += bytes(self.cluster_size)

    # -- finishing ----------------------------------------------------------------------

    def _time(self) -> float:
        return self.now if self.now is not None else time.time()

    def flush(self) -> None:
        """Write the allocation tables (every copy) and FAT32's free count, then sync."""
        if self.table.dirty:
            for i in range(self.nfats):
                self.dev.write(self._fat_start + i * self._fat_bytes, bytes(self.table.data))
            self.table.dirty = False
            if self.kind == 32 and self._fsinfo:
                self._write_fsinfo()
        self.dev.flush()

    def _write_fsinfo(self) -> None:
        at = self.offset + self._fsinfo * self.bps
        info = self.dev.read(at, 512)
        if info[:4] == b"RRaA" and info[484:488] == b"rrAa":
            self.dev.write(at + 488, struct.pack("<II", self.free_clusters(), self.table.hint))


def _parts(path: str) -> list[str]:
    return [p for p in path.replace("\\", "/").split("/") if p]
