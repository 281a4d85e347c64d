"""The OLED: send a frame only when the picture changes, and keep the panel from burning in.

An SSD1306 frame is about 0.1 s of I2C at 100 kHz, and OLED pixels that stay lit for
months fade unevenly. So: compare before sending; shift the picture a pixel every few
minutes (frames keep a 1-pixel margin for this, see ``frame.MARGIN``); dim after a quiet
period; wake (full brightness) on a button press or a change of state.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from .frame import BOX, MARGIN, SIZE

# A slow walk around the centre; each step moves one pixel, so it is never noticed.
SHIFTS = ((0, 0), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


class Screen:
    """A luma device that shows frames, redraws only on change and protects against burn-in."""

    def __init__(
        self,
        device: Any,
        *,
        bright: int = 0xCF,
        dim: int = 0x10,
        dim_after: float = 600.0,
        shift_every: float = 180.0,
        persist: bool = False,
    ) -> None:
        self.device = device
        self.bright, self.dim = bright, dim
        self.dim_after, self.shift_every = dim_after, shift_every
        self.persist = persist
        self.frames = 0  # pictures sent to the device: the cost we keep low
        self.dimmed = False
        self._last: bytes | None = None
        self._epoch: float | None = None
        self._woken: float | None = None

    def shift(self, now: float) -> tuple[int, int]:
        """Return the pixel offset in use at monotonic time ``now``."""
        if self._epoch is None or self.shift_every <= 0:
            return SHIFTS[0]
        return SHIFTS[int((now - self._epoch) // self.shift_every) % len(SHIFTS)]

    def show(self, frame: Image.Image, now: float) -> bool:
        """Show ``frame`` (128x64, mode "1") as of monotonic ``now``; return whether it was sent."""
        if self._epoch is None:
            self._epoch = self._woken = now
        self._dim_if_quiet(now)
        picture = _shifted(frame, self.shift(now))
        data = picture.tobytes()
        if data == self._last:
            return False
        self.device.display(picture)
        self._last = data
        self.frames += 1
        return True

    def wake(self, now: float) -> None:
        """Bring back full brightness and restart the quiet period (button or new state)."""
        self._woken = now
        if self.dimmed:
            self.device.contrast(self.bright)
            self.dimmed = False

    def _dim_if_quiet(self, now: float) -> None:
        if not self.dimmed and self._woken is not None and now - self._woken >= self.dim_after:
            self.device.contrast(self.dim)
            self.dimmed = True

    def close(self) -> None:
        """Clear and switch off the panel, unless it is set to keep the last picture."""
        # luma's cleanup clears and switches off unless persist, then frees the I2C bus.
        self.device.persist = self.persist
        self.device.cleanup()
        self._last = None

    def __enter__(self) -> Screen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shifted(frame: Image.Image, offset: tuple[int, int]) -> Image.Image:
    """Return ``frame`` with its content box moved by ``offset`` pixels."""
    if frame.size != SIZE or frame.mode != "1":
        raise ValueError(
            f"a frame is {SIZE[0]}x{SIZE[1]} in mode 1, not "
            f"{frame.size[0]}x{frame.size[1]} in mode {frame.mode}"
        )
    if offset == (0, 0):
        return frame
    dx, dy = offset
    content = frame.crop((MARGIN, MARGIN, MARGIN + BOX[0], MARGIN + BOX[1]))
    out = Image.new("1", SIZE, 0)
    out.paste(content, (MARGIN + dx, MARGIN + dy))
    return out
