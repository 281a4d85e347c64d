"""A reader thread that fills 1 MiB buffers while the caller writes (and hashes) the last ones.

Decompression, os.read, os.write and hashlib all release the GIL, so reading (decompressing)
and writing really run side by side. Hashing happens in the caller's thread, which otherwise
only waits for the next block: a third thread would add hand-offs, not speed.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable

BLOCK = 1 << 20  # 1 MiB, as `dd bs=1m`
POOL = 8  # buffers in flight: enough to overlap, small enough to stay at 8 MiB
_DONE = object()


class Pipeline:
    """A reader thread feeding the caller full buffers, in order, from a small pool."""

    def __init__(self, read: Callable[[bytearray], int], *, hashing: bool = True) -> None:
        self.read, self.hashing, self.stop = read, hashing, threading.Event()
        self.free: queue.Queue = queue.Queue()
        self.full: queue.Queue = queue.Queue()
        self.hasher = hashlib.sha256()
        for _ in range(POOL):
            self.free.put(bytearray(BLOCK))
        self.thread = threading.Thread(target=self._produce, daemon=True, name="flash-read")

    def _get(self, q: queue.Queue):
        """Return the next item of q, or _DONE once stopped (so no thread outlives a failure)."""
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _DONE

    def _produce(self) -> None:
        """Read blocks until the end; pass exceptions on to the caller's thread."""
        try:
            while True:
                buf = self._get(self.free)
                if buf is _DONE:
                    return
                n = self.read(buf)
                self.full.put((buf, n))
                if n < BLOCK:
                    return
        except BaseException as exc:  # re-raised in the caller's thread by blocks()
            self.full.put(exc)

    def __enter__(self) -> Pipeline:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(timeout=5)

    def blocks(self):
        """Yield (buffer, bytes) in order until the data ends."""
        while True:
            item = self._get(self.full)
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            if item[1] < BLOCK:
                return

    def done_with(self, buf: bytearray, n: int) -> None:
        """Hash a used block (when hashing) and give its buffer back to the reader."""
        if self.hashing and n:
            self.hasher.update(memoryview(buf)[:n])
        self.free.put(buf)

    def digest(self) -> str:
        """Return the hex SHA-256 of every block handed back ("" when not hashing)."""
        return self.hasher.hexdigest() if self.hashing else ""
