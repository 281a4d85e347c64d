"""FAT directory entries: 8.3 names with their case flags, long (VFAT) names, timestamps.

A file's name can be stored three ways: a long name plus an 8.3 alias (Linux's vfat driver
writes ``cmdline.txt`` so), an 8.3 name with the "lower case" flags in byte 12 (mtools and
Windows NT write ``cmdline.txt`` so), or a plain upper-case 8.3 name (``CMDLINE.TXT``).
Lookups compare every form case-insensitively; rewriting a file keeps its entry as it is.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

SLOT = 32
ATTR_READ_ONLY, ATTR_HIDDEN, ATTR_SYSTEM = 0x01, 0x02, 0x04
ATTR_VOLUME, ATTR_DIRECTORY, ATTR_ARCHIVE, ATTR_LFN = 0x08, 0x10, 0x20, 0x0F
LOWER_BASE, LOWER_EXT = 0x08, 0x10  # byte 12 of an 8.3 entry (Windows NT case flags)
FREE, END = 0xE5, 0x00
LFN_CHARS = 13
_SHORT_OK = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'()-@^_`{}~")


@dataclass
class Entry:
    """One file or directory as found in a directory."""

    name: str  # the long name, else the 8.3 name with its case flags applied
    short: bytes  # the 11 bytes of the 8.3 name
    attr: int
    cluster: int
    size: int
    slots: list[int] = field(default_factory=list)  # slot indexes: long-name parts, then 8.3

    @property
    def is_dir(self) -> bool:
        return bool(self.attr & ATTR_DIRECTORY)

    def matches(self, name: str) -> bool:
        """Tell whether ``name`` names this entry, in any case and any stored form."""
        want = name.casefold()
        return want in (self.name.casefold(), short_text(self.short, 0).casefold())


def short_text(short: bytes, flags: int) -> str:
    """Return the 8.3 name as text, lower-cased where the entry's flags say so."""
    base = short[:8].rstrip(b" ")
    if base[:1] == b"\x05":  # 0xE5 as a first character is stored as 0x05
        base = b"\xe5" + base[1:]
    ext = short[8:11].rstrip(b" ")
    base_s, ext_s = base.decode("cp437"), ext.decode("cp437")
    if flags & LOWER_BASE:
        base_s = base_s.lower()
    if flags & LOWER_EXT:
        ext_s = ext_s.lower()
    return f"{base_s}.{ext_s}" if ext_s else base_s


def lfn_checksum(short: bytes) -> int:
    """Return the checksum that ties long-name parts to their 8.3 entry."""
    total = 0
    for byte in short:
        total = (((total & 1) << 7) + (total >> 1) + byte) & 0xFF
    return total


def _lfn_part(slot: bytes) -> str:
    raw = slot[1:11] + slot[14:26] + slot[28:32]
    text = raw.decode("utf-16-le", errors="replace")
    return text.split("\0", 1)[0].replace("\uffff", "")


def parse(raw: bytes) -> tuple[list[Entry], int]:
    """Return the entries of a directory's bytes and the index of its end marker."""
    entries: list[Entry] = []
    parts: list[tuple[int, str]] = []  # (slot index, text) of the pending long name
    checksum: int | None = None
    count = len(raw) // SLOT
    for i in range(count):
        slot = raw[i * SLOT : (i + 1) * SLOT]
        if slot[0] == END:
            return entries, i
        if slot[0] == FREE:
            parts, checksum = [], None
            continue
        if slot[11] == ATTR_LFN:
            if slot[0] & 0x40:  # the last part comes first on disk
                parts, checksum = [], slot[13]
            if checksum == slot[13]:
                parts.append((i, _lfn_part(slot)))
            continue
        entry = _short_entry(slot, i, parts, checksum)
        parts, checksum = [], None
        if entry is not None:
            entries.append(entry)
    return entries, count


def _short_entry(slot: bytes, index: int, parts, checksum) -> Entry | None:
    attr = slot[11]
    if attr & ATTR_VOLUME:
        return None
    short = slot[:11]
    if short in (b".          ", b"..         "):
        return None
    hi = struct.unpack_from("<H", slot, 20)[0]
    lo, size = struct.unpack_from("<HI", slot, 26)
    name = short_text(short, slot[12])
    slots = [index]
    if parts and checksum == lfn_checksum(short):
        name = "".join(text for _, text in reversed(parts))
        slots = [i for i, _ in parts] + [index]
    return Entry(name, short, attr, (hi << 16) | lo, size, slots)


def dos_time(now: float | None = None) -> tuple[int, int]:
    """Return (time, date) in FAT's packed local-time format."""
    t = time.localtime(now)
    year = min(max(t.tm_year, 1980), 2107)
    return (
        (t.tm_hour << 11) | (t.tm_min << 5) | (t.tm_sec // 2),
        ((year - 1980) << 9) | (t.tm_mon << 5) | t.tm_mday,
    )


def encode_short(
    short: bytes, attr: int, cluster: int, size: int, now: float | None = None, flags: int = 0
) -> bytes:
    """Return a 32-byte 8.3 entry."""
    tm, dt = dos_time(now)
    return struct.pack(
        "<11sBBBHHHHHHHI", short, attr, flags, 0, tm, dt, dt, cluster >> 16, tm, dt, cluster & 0xFFFF, size
    )


def update_short(slot: bytes, cluster: int, size: int, now: float | None = None) -> bytes:
    """Return an existing 8.3 entry pointing at new data, with its name and flags kept."""
    tm, dt = dos_time(now)
    out = bytearray(slot)
    struct.pack_into("<HHHHHI", out, 18, dt, cluster >> 16, tm, dt, cluster & 0xFFFF, size)
    return bytes(out)


def encode_long(name: str, short: bytes) -> list[bytes]:
    """Return the long-name slots for ``name``, in on-disk order (last part first)."""
    units = name.encode("utf-16-le")
    chunks = [units[i : i + 2 * LFN_CHARS] for i in range(0, len(units), 2 * LFN_CHARS)]
    if len(chunks[-1]) < 2 * LFN_CHARS:
        chunks[-1] = (chunks[-1] + b"\0\0").ljust(2 * LFN_CHARS, b"\xff")
    checksum = lfn_checksum(short)
    slots = []
    for number, chunk in enumerate(chunks, start=1):
        order = number | (0x40 if number == len(chunks) else 0)
        slot = (
            bytes([order])
            + chunk[:10]
            + bytes([ATTR_LFN, 0, checksum])
            + chunk[10:22]
            + b"\0\0"
            + chunk[22:26]
        )
        slots.append(slot)
    return list(reversed(slots))


def plain_short(name: str) -> bytes | None:
    """Return the 8.3 bytes when ``name`` is already a valid upper-case 8.3 name."""
    base, dot, ext = name.rpartition(".") if "." in name else (name, "", "")
    if not base or len(base) > 8 or len(ext) > 3 or "." in base:
        return None
    if name != name.upper() or not _valid(base) or not _valid(ext):
        return None
    return base.encode("ascii").ljust(8) + ext.encode("ascii").ljust(3)


def _valid(text: str) -> bool:
    return all(ord(c) < 128 and ord(c) in _SHORT_OK for c in text)


def make_short(name: str, taken: Iterable[bytes]) -> bytes:
    """Return a unique 8.3 alias for a long name (``USER-D~1``), as Windows and Linux do."""
    taken_set: set[bytes] = set(taken)
    base, _, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")

    def clean(text: str) -> str:
        return "".join(c if _valid(c) else "_" for c in text.upper().replace(" ", "").lstrip("."))

    base_c, ext_c = clean(base) or "_", clean(ext)[:3]
    exact = base_c.encode("ascii").ljust(8) + ext_c.encode("ascii").ljust(3)
    lossless = clean(base) == base.upper() and clean(ext) == ext.upper() and len(ext) <= 3
    if len(base_c) <= 8 and lossless and exact not in taken_set:
        return exact  # e.g. "firstrun.sh" -> "FIRSTRUN.SH", no "~1" needed
    for n in range(1, 1000000):
        tail = f"~{n}"
        short = (base_c[: 8 - len(tail)] + tail).encode("ascii").ljust(8) + ext_c.encode("ascii").ljust(3)
        if short not in taken_set:
            return short
    raise ValueError("no free 8.3 alias")
