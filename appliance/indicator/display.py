"""The OLED: send a frame only when the picture changes, and keep the panel from burning in.

An SSD1306 frame is about 0.1 s of I2C at 100 kHz, and OLED pixels that stay lit for
months fade unevenly. So: compare before sending; shift the picture a pixel every few
minutes (frames keep a 1-pixel margin for this, see ``frame.MARGIN``); dim after a quiet
period; switch the panel off while all is well; wake (full brightness, panel on) on a
button press or a change of state.

The shift follows the wall clock, not how long the loop has run, so a single frame
(``appliance indicator --once --preview FILE --at TIME``) shows the shift of its time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PIL import Image

from .frame import BOX, MARGIN, SIZE

# A slow walk around the centre; each step moves one pixel, so it is never noticed.
SHIFTS = ((0, 0), (1, 0), (1, 1), (0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1))


def shift_for(wall: datetime, every: float) -> tuple[int, int]:
    """Return the pixel offset in use at ``wall``: one step along ``SHIFTS`` per ``every`` seconds."""
    if every <= 0:
        return SHIFTS[0]
    return SHIFTS[int(wall.timestamp() // every) % len(SHIFTS)]


def shifted(frame: Image.Image, offset: tuple[int, int]) -> Image.Image:
    """Return ``frame`` with its content box moved by ``offset`` pixels (nothing is cut off)."""
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


class Screen:
    """A luma device that shows frames, redraws only on change, dims and blanks when quiet.

    ``dim_after`` and ``blank_after`` are seconds since the last ``wake`` (0: never).
    The panel dims in any state; it is switched off only while ``show`` is told the
    state is resting (all is well), so an alert is never hidden.
    """

    def __init__(
        self,
        device: Any,
        *,
        bright: int = 0xCF,
        dim: int = 0x10,
        dim_after: float = 600.0,
        blank_after: float = 3600.0,
        persist: bool = False,
    ) -> None:
        self.device = device
        self.bright, self.dim = bright, dim
        self.dim_after, self.blank_after = dim_after, blank_after
        self.persist = persist
        self.frames = 0  # pictures sent to the device: the cost we keep low
        self.dimmed = False
        self.blank = False
        self._last: bytes | None = None
        self._wanted: Image.Image | None = None
        self._woken: float | None = None

    def show(self, frame: Image.Image, now: float, *, resting: bool = False) -> bool:
        """Show ``frame`` (128x64, mode "1") as of monotonic ``now``; return whether it was sent.

        ``resting`` says all is well: the panel may be switched off after ``blank_after``.
        """
        shifted(frame, (0, 0))  # refuse a frame of the wrong size or mode at once
        if self._woken is None:
            self._woken = now
        self._wanted = frame
        quiet = now - self._woken
        if not self.dimmed and 0 < self.dim_after <= quiet:
            self.device.contrast(self.dim)
            self.dimmed = True
        if resting and not self.blank and 0 < self.blank_after <= quiet:
            self.device.hide()  # the panel off: no pixel ages, nothing is sent
            self.blank = True
        elif self.blank and not resting:
            self._unblank()
        return False if self.blank else self._send(frame)

    def wake(self, now: float) -> None:
        """Bring back full brightness and restart the quiet period (button or new state)."""
        self._woken = now
        if self.dimmed:
            self.device.contrast(self.bright)
            self.dimmed = False
        if self.blank:
            self._unblank()
            if self._wanted is not None:
                self._send(self._wanted)

    def _unblank(self) -> None:
        self.device.show()
        self.blank = False

    def _send(self, frame: Image.Image) -> bool:
        data = frame.tobytes()
        if data == self._last:
            return False
        self.device.display(frame)
        self._last = data
        self.frames += 1
        return True

    def close(self) -> None:
        """Clear and switch off the panel, unless it is set to keep the last picture."""
        if self.blank and self.persist:
            self._unblank()
        # luma's cleanup clears and switches off unless persist, then frees the I2C bus.
        self.device.persist = self.persist
        self.device.cleanup()
        self._last = None

    def __enter__(self) -> Screen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
