"""Progress bars with rate and time left: tqdm when installed, else a plain line on stderr."""

from __future__ import annotations

import os
import sys
import time

PROGRESS_ENV = "APPLIANCE_FLASH_PROGRESS"  # tqdm | plain | none


def mib(n: float) -> str:
    """Return a byte count in binary units, as the bar shows it."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


class PlainProgress:
    """A progress line for when tqdm is missing (a stock Mac's python3)."""

    def __init__(self, total: int | None, desc: str, interval: float = 1.0) -> None:
        self.total, self.desc, self.done = total, desc, 0
        self.start = self.last = time.monotonic()
        self.tty = sys.stderr.isatty()
        self.interval = interval if self.tty else 5 * interval

    def update(self, n: int) -> None:
        """Count n more bytes and redraw at most once per interval."""
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            self._draw(now)

    def _draw(self, now: float, end: str = "") -> None:
        """Print the line: bytes, percent, rate, time left."""
        rate = self.done / max(now - self.start, 1e-6)
        line = f"{self.desc}: {mib(self.done)}"
        if self.total:
            left = max(self.total - self.done, 0) / max(rate, 1)
            line += f" of {mib(self.total)} ({100 * self.done / self.total:.0f}%)"
            line += f" at {mib(rate)}/s, {int(left) // 60}:{int(left) % 60:02d} left"
        else:
            line += f" at {mib(rate)}/s"
        sys.stderr.write(("\r" + line + "   " + end) if self.tty else line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        """Draw the final line."""
        self._draw(time.monotonic(), end="\n" if self.tty else "")


class NoProgress:
    """A bar that shows nothing."""

    def update(self, n: int) -> None:
        """Ignore n."""

    def close(self) -> None:
        """Do nothing."""


def bar(total: int | None, desc: str):
    """Return a progress bar over total bytes (None when unknown)."""
    mode = os.environ.get(PROGRESS_ENV, "tqdm")
    if mode == "none":
        return NoProgress()
    if mode == "tqdm":
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return tqdm(
                total=total,
                desc=desc,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
                mininterval=0.5,
                dynamic_ncols=True,
            )
    return PlainProgress(total, desc)
