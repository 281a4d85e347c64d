"""Reading the target back and comparing it with the image (Imager and Etcher verify too).

A compressed image was hashed while written: the card's SHA-256 must equal it. A raw image
was copied unhashed: the card is compared block by block with the file, and its SHA-256 is
computed on the way, so one hash, not two, is spent on each byte.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable

from appliance.flash.errors import VerifyError
from appliance.flash.pipeline import BLOCK, Pipeline
from appliance.flash.writer import WriteResult, padded


def drop_cache(fd: int) -> None:
    """Flush and drop cached pages of fd, so the next read comes from the medium, not memory."""
    os.fsync(fd)
    if sys.platform.startswith("linux"):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _pread_full(fd: int, buf: bytearray, want: int, offset: int) -> int:
    """Read want bytes at offset into buf; return fewer only at the end of the target."""
    view, got = memoryview(buf), 0
    while got < want:
        os.lseek(fd, offset + got, os.SEEK_SET)
        n = os.readv(fd, [view[got:want]])
        if not n:
            break
        got += n
    return got


def block_reader(fd: int, size: int, block_size: int) -> Callable[[bytearray], int]:
    """Return a reader of the first size bytes of fd in aligned 1 MiB blocks (raw devices)."""
    state = {"offset": 0}

    def read(buf: bytearray) -> int:
        """Read the next aligned block into buf; return its bytes within size."""
        want = min(BLOCK, size - state["offset"])
        if want <= 0:
            return 0
        got = _pread_full(fd, buf, padded(want, block_size), state["offset"])
        state["offset"] += want
        return min(got, want)

    return read


def _mismatch(result: WriteResult, detail: str) -> VerifyError:
    """Return the error for a card that does not read back as written."""
    return VerifyError(
        f"The card does not read back as written ({detail}; {result.size} bytes were written). "
        "The card or the reader is faulty, or something else wrote to it. Flash it again; if "
        "it fails again, use another card."
    )


def sha256_of(fd: int, size: int, *, block_size: int = 1, progress=None, image_fd=None) -> str:
    """Return the SHA-256 of fd's first size bytes; with image_fd, also compare every block."""
    offset, image_buf = 0, bytearray(BLOCK)
    with Pipeline(block_reader(fd, size, block_size)) as pipe:
        for buf, n in pipe.blocks():
            if image_fd is not None and n and not _same(buf, n, image_fd, image_buf, offset):
                raise VerifyError(f"differs from the image in MiB {offset // BLOCK}")
            pipe.done_with(buf, n)
            offset += n
            if progress is not None and n:
                progress.update(n)
            if n == 0:
                break
        return pipe.digest()


def _same(buf: bytearray, n: int, image_fd: int, image_buf: bytearray, offset: int) -> bool:
    """Return True when n bytes of buf equal the image's bytes at offset."""
    got = _pread_full(image_fd, image_buf, n, offset)
    if n == BLOCK and got == n:
        return buf == image_buf  # whole buffers: one memcmp, no copies
    return got == n and buf[:n] == image_buf[:n]


def verify(
    fd: int, result: WriteResult, *, block_size: int = 1, progress=None, image_path: str = ""
) -> float:
    """Read the written bytes back and compare them with the image; return the seconds taken."""
    start = time.monotonic()
    drop_cache(fd)
    image_fd = None if result.sha256 else os.open(image_path, os.O_RDONLY)
    try:
        sha = sha256_of(fd, result.size, block_size=block_size, progress=progress, image_fd=image_fd)
    except VerifyError as exc:
        raise _mismatch(result, str(exc)) from None
    finally:
        if image_fd is not None:
            os.close(image_fd)
    if not result.sha256:
        result.sha256 = sha  # every block matched the image, so this is the image's hash too
    elif sha != result.sha256:
        raise _mismatch(result, f"SHA-256 wrote {result.sha256[:16]}..., read {sha[:16]}...")
    return time.monotonic() - start
