"""Image sources: a local .img, .img.xz, .gz or .zip, opened as one stream of image bytes.

Decompression is streamed (never to disk) so writing can start at once; the kind is taken
from the file's magic bytes, so a misnamed file still works.
"""

from __future__ import annotations

import gzip
import lzma
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import IO, Protocol

from appliance.flash import xzindex
from appliance.flash.errors import ImageError

MAGICS = (
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x1f\x8b", "gz"),
    (b"PK\x03\x04", "zip"),
    (b"BZh", "bz2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"7z\xbc\xaf\x27\x1c", "7z"),
)
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA)
# What decompression raises on damaged input; all of them become ImageError.
DATA_ERRORS = (EOFError, lzma.LZMAError, zlib.error, zipfile.BadZipFile, gzip.BadGzipFile)


class ImageStream(Protocol):
    """The uncompressed image bytes as the writer reads them: a raw file or a decompressor."""

    def readinto(self, buf: bytearray | memoryview, /) -> int | None: ...

    def close(self) -> None: ...


@dataclass
class Image:
    """An image file and how to read the raw image out of it."""

    path: str
    kind: str  # raw | xz | gz | zip
    size: int | None = None  # uncompressed bytes, when known before reading
    member: str = ""  # the .img inside a .zip
    expected_sha256: str = ""  # of the uncompressed image, when the image list publishes it

    @property
    def name(self) -> str:
        """Return the file name for messages."""
        return os.path.basename(self.path)

    def open(self) -> ImageStream:
        """Return a binary stream of the uncompressed image."""
        if self.kind == "raw":
            return open(self.path, "rb", buffering=0)
        if self.kind == "xz":
            return XzReader(self.path)
        if self.kind == "gz":
            return gzip.open(self.path, "rb")
        archive = zipfile.ZipFile(self.path)
        return _ZipMember(archive, archive.open(self.member))


class XzReader:
    """An .xz stream reader that, unlike lzma.open, reads on past stream padding.

    lzma.open stops silently at the zero padding the xz format allows between streams; this
    reader also feeds 1 MiB input chunks, which keeps Python overhead per byte low.
    """

    CHUNK = 1 << 20

    def __init__(self, path: str) -> None:
        self._file = open(path, "rb", buffering=0)
        self._dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        self._input = b""

    def _next_stream(self) -> bool:
        """Start the next stream after padding; return False at the end of the file."""
        self._input = self._dec.unused_data.lstrip(b"\0")
        while not self._input:
            chunk = self._file.read(self.CHUNK)
            if not chunk:
                return False
            self._input = chunk.lstrip(b"\0")
        self._dec = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        return True

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Decompress up to len(buf) bytes into buf; return 0 at the end."""
        while True:
            if self._dec.eof and not self._next_stream():
                return 0
            data = b""
            if self._dec.needs_input:
                data, self._input = self._input or self._file.read(self.CHUNK), b""
                if not data:
                    raise EOFError("the xz data ends before the end of its stream")
            out = self._dec.decompress(data, max_length=len(buf))
            if out:
                buf[: len(out)] = out
                return len(out)

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class _ZipMember:
    """A zip member stream that also closes its archive."""

    def __init__(self, archive: zipfile.ZipFile, stream: IO[bytes]) -> None:
        self._archive, self._stream = archive, stream

    def readinto(self, buf: bytearray | memoryview) -> int:
        """Fill buf from the member; return the number of bytes read."""
        data = self._stream.read(len(buf))
        buf[: len(data)] = data
        return len(data)

    def close(self) -> None:
        """Close the member and the archive."""
        self._stream.close()
        self._archive.close()


def detect_kind(path: str) -> str:
    """Return raw, xz, gz or zip from the file's first bytes; refuse other archives."""
    with open(path, "rb") as f:
        head = f.read(8)
    for magic, kind in MAGICS:
        if head.startswith(magic):
            if kind in ("bz2", "zstd", "7z"):
                raise ImageError(
                    f"{path} is a {kind} archive, which is not supported: "
                    f"decompress it to .img first (or use the .img.xz from raspberrypi.com)."
                )
            return kind
    return "raw"


def inspect(path: str) -> Image:
    """Return the Image for a local file, checking up front what can be checked cheaply."""
    path = os.path.expanduser(path)
    if not os.path.isfile(path):
        raise ImageError(f"{path} was not found (or is not a file): check the path.")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path} is empty: download the image again.")
    try:
        kind = detect_kind(path)
    except OSError as exc:
        raise ImageError(f"{path} cannot be read: {exc.strerror}.") from None
    if kind == "raw":
        return Image(path, "raw", os.path.getsize(path))
    if kind == "xz":
        return Image(path, "xz", _xz_size(path))
    if kind == "zip":
        return _zip_image(path)
    return Image(path, "gz", None)  # gzip only knows the size modulo 4 GiB


def _xz_size(path: str) -> int:
    """Return the uncompressed size of an .xz file, refusing one that was cut short."""
    try:
        with open(path, "rb") as f:
            return xzindex.uncompressed_size(f)
    except xzindex.XzIndexError as exc:
        raise ImageError(
            f"{path} is damaged or incomplete ({exc}): the download was probably cut short. "
            "Download it again."
        ) from None


def _zip_image(path: str) -> Image:
    """Return the Image for the one disk image inside a .zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = [i for i in archive.infolist() if not i.is_dir()]
    except zipfile.BadZipFile as exc:
        raise ImageError(f"{path} is not a complete zip file ({exc}): download it again.") from None
    images = [i for i in members if i.filename.lower().endswith((".img", ".iso", ".raw"))]
    chosen = images if images else members
    if len(chosen) != 1:
        names = ", ".join(i.filename for i in members) or "nothing"
        raise ImageError(
            f"{path} should hold exactly one disk image (.img) but holds: {names}. "
            "Unzip it and pass the .img with --image."
        )
    member = chosen[0]
    if member.compress_type not in _ZIP_METHODS:
        raise ImageError(
            f"{path} uses a zip compression method Python cannot read "
            f"(method {member.compress_type}): unzip it and pass the .img with --image."
        )
    return Image(path, "zip", member.file_size, member=member.filename)


def damaged(image: Image, exc: BaseException) -> ImageError:
    """Return the error for an image whose data turned out damaged while reading it."""
    return ImageError(
        f"{image.path} is damaged or incomplete ({exc.__class__.__name__}: {exc}): "
        "the card is incomplete and will not boot. Download the image again and flash again."
    )
