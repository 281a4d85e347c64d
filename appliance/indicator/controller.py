"""One pass of the indicator: read the status, then bring the lights and the display up to date."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

from PIL import Image

from .address import Address
from .button import ACK, HOLD, PRESS, ButtonEvents
from .display import Screen, shift_for, shifted
from .frame import SIZE, render_address_frame, render_frame
from .leds import DESCRIPTIONS, Lights
from .view import pattern_for, unreadable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tick:
    """What one pass showed."""

    state: str
    pattern: str
    reason: str
    frame: Image.Image  # what the display shows: shifted against burn-in, black when off
    redrawn: bool
    acknowledged: object = None  # what ``acknowledge`` returned, when the button asked

    @property
    def summary(self) -> str:
        """Return one line for people: state, lights and why."""
        return f"{self.state}: {DESCRIPTIONS[self.pattern]}; {self.reason}".rstrip("; ")


class Indicator:
    """Drive the lights, the button and the display from the status document.

    The outside world comes in: ``read_status`` returns the status document (BRIEF
    section 3), ``acknowledge`` acknowledges the current alert, ``lights``, ``screen``
    and ``button`` are the hardware (or gpiozero's and luma's stand-ins), ``address``
    says where the status page is. ``wall`` is the clock people read (it also sets the
    burn-in shift, one step per ``shift_every`` seconds); ``clock`` the monotonic one.
    """

    def __init__(
        self,
        read_status: Callable[[], dict[str, Any]],
        acknowledge: Callable[[], object],
        lights: Lights | None,
        *,
        screen: Screen | None = None,
        button: Any = None,
        address: Callable[[], Address] = lambda: Address(None, 8080),
        lamp_test: float = 1.0,
        address_time: float = 30.0,
        preview: str | os.PathLike | None = None,
        shift_every: float = 180.0,
        tz: tzinfo | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read_status, self._acknowledge = read_status, acknowledge
        self.lights, self.screen = lights, screen
        self.wakeup = threading.Event()
        self._events = ButtonEvents(button, self.wakeup) if button is not None else None
        self._address = address
        self._lamp_test, self._address_time = lamp_test, address_time
        self._preview = Path(preview) if preview else None
        self._shift_every = shift_every
        self._tz, self._wall, self._clock = tz, wall, clock
        self._address_until = -1.0
        self._shown: tuple[str, str] | None = None
        self._last_error = ""
        self._preview_bytes: bytes | None = None
        self._preview_device: Any = None

    def start(self) -> None:
        """Run the lamp test: every LED and every pixel on, briefly."""
        if self.lights is not None:
            self.lights.show("lamp_test")
        if self.screen is not None:
            self.screen.show(Image.new("1", SIZE, 1), self._clock())
        time.sleep(self._lamp_test)  # the lamp test is the one thing worth waiting for

    def tick(self) -> Tick:
        """Handle the button, read the status once, and update the lights and the display."""
        now = self._clock()
        acked = self._handle_button(now)
        status = self._read()
        pattern = pattern_for(status)
        if self.lights is not None:
            self.lights.show(pattern)
        state = str(status.get("state") or "unknown")
        if (state, pattern) != self._shown:
            if self._shown is not None and self.screen is not None:
                self.screen.wake(now)  # a new state deserves a bright screen
            log.info("%s: lights %s; %s", state, DESCRIPTIONS[pattern], status.get("reason", ""))
            self._shown = (state, pattern)
        address, wall = self._address(), self._wall()
        held = now < self._address_until
        if held:
            frame = render_address_frame(address.ip, address.url)
        else:
            frame = render_frame(status, address.short, wall, self._tz)
        frame = shifted(frame, shift_for(wall, self._shift_every))
        redrawn = False
        if self.screen is not None:
            # Only while all is well may the panel go dark; an alert always shows.
            redrawn = self.screen.show(frame, now, resting=pattern == "ok" and not held)
            if self.screen.blank:
                frame = Image.new("1", SIZE, 0)
        self._write_preview(frame)
        return Tick(state, pattern, str(status.get("reason") or ""), frame, redrawn, acked)

    def _handle_button(self, now: float) -> object:
        acked: object = None
        for event in self._events.take() if self._events else []:
            if event in (PRESS, HOLD) and self.screen is not None:
                self.screen.wake(now)
            if event == HOLD:
                self._address_until = now + self._address_time
            if event == ACK:
                acked = self._ack()
        return acked

    def _ack(self) -> object:
        try:
            result = self._acknowledge()
        except Exception as e:  # the loop must survive a failed acknowledgement
            log.warning("the button could not acknowledge the alert: %s", e)
            return False
        log.info("button: %s", "alert acknowledged" if result else "nothing to acknowledge")
        return result

    def _read(self) -> dict[str, Any]:
        try:
            status = self._read_status()
        except Exception as e:  # show it on the lights and the screen; keep running
            if str(e) != self._last_error:
                log.warning("cannot read the status: %s", e)
                self._last_error = str(e)
            return unreadable(e)
        self._last_error = ""
        return status

    def _write_preview(self, frame: Image.Image) -> None:
        data = frame.tobytes()
        if self._preview is None or data == self._preview_bytes:
            return
        if self._preview_device is None:
            from luma.core.device import dummy

            self._preview_device = dummy(width=SIZE[0], height=SIZE[1], mode="1")
        # Through luma's dummy device: the file holds exactly what a display is sent.
        self._preview_device.display(frame)
        write_png(self._preview_device.image, self._preview)
        self._preview_bytes = data

    def wait(self, seconds: float, stopping: Callable[[], bool] = lambda: False) -> None:
        """Wait up to ``seconds`` for the next pass; return early on a button or a stop."""
        deadline = self._clock() + seconds
        # Short slices so a stop flag set by a signal handler is seen soon: the handler
        # must not touch an Event's lock itself.
        while not stopping() and (left := deadline - self._clock()) > 0:
            if self.wakeup.wait(min(left, 0.25)):
                break
        self.wakeup.clear()

    def close(self) -> None:
        """Turn the lights off, let go of the button, and clear the display (unless persist)."""
        if self._events is not None:
            self._events.close()
        if self.lights is not None:
            self.lights.close()
        if self.screen is not None:
            self.screen.close()

    def __enter__(self) -> Indicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def write_png(frame: Image.Image, path: str | os.PathLike) -> None:
    """Write ``frame`` to ``path`` as PNG, atomically (a reader never sees half a file)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            frame.save(f, format="PNG")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
