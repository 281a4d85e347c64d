"""The traffic light: one pattern per state (BRIEF section 3), one pattern at a time."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

Lamps = tuple[int, int, int]  # (red, amber, green), the order of gpiozero's TrafficLights
Step = tuple[Lamps, float]  # lamps, then seconds to hold them (0: hold until changed)

OFF: Lamps = (0, 0, 0)
RED: Lamps = (1, 0, 0)
AMBER: Lamps = (0, 1, 0)
GREEN: Lamps = (0, 0, 1)


@dataclass(frozen=True)
class BlinkTimes:
    """How long a lamp stays on (and off) when blinking; tests pass short ones."""

    fast: float = 0.5
    slow: float = 1.5


def patterns(times: BlinkTimes = BlinkTimes()) -> dict[str, tuple[Step, ...]]:
    """Return every light pattern by name, as steps that repeat."""
    fast, slow = times.fast, times.slow
    return {
        "ok": ((GREEN, 0),),
        "lagging": ((AMBER, fast), (OFF, fast)),
        "drift": ((AMBER, 0),),
        "frozen": (((1, 1, 0), 0),),
        "maintenance": ((GREEN, slow), (OFF, slow)),
        "outage": ((RED, fast), (OFF, fast)),
        "outage_ack": ((RED, 0),),
        "agent_down": ((RED, fast), (AMBER, fast)),
        "lamp_test": (((1, 1, 1), 0),),
        "off": ((OFF, 0),),
    }


# For people: the README, `appliance indicator --once`, the log.
DESCRIPTIONS = {
    "ok": "green steady",
    "lagging": "amber blinking",
    "drift": "amber steady",
    "frozen": "amber and red steady",
    "maintenance": "green blinking slowly",
    "outage": "red blinking",
    "outage_ack": "red steady",
    "agent_down": "red and amber alternating",
    "lamp_test": "all on",
    "off": "all off",
}


class Lights:
    """Show one pattern at a time on a gpiozero ``TrafficLights``; switching is immediate."""

    def __init__(self, board: Any, times: BlinkTimes = BlinkTimes()) -> None:
        self._board = board
        self._patterns = patterns(times)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._current: str | None = None

    @property
    def pattern(self) -> str | None:
        """Return the name of the pattern shown now."""
        return self._current

    def show(self, name: str) -> None:
        """Show the pattern ``name``; showing the current one again keeps its rhythm."""
        steps = self._patterns[name]  # KeyError: a programming error, not a user's
        with self._lock:
            if name == self._current:
                return
            self._halt()
            self._current = name
            if len(steps) == 1:
                self._board.value = steps[0][0]
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(
                target=self._blink, args=(steps, self._stop), name=f"lights-{name}", daemon=True
            )
            self._thread.start()

    def _halt(self) -> None:
        # Join, not just signal: the old pattern must not write a lamp after the new one.
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _blink(self, steps: tuple[Step, ...], stop: threading.Event) -> None:
        while True:
            for lamps, seconds in steps:
                self._board.value = lamps
                if stop.wait(seconds):
                    return

    def close(self) -> None:
        """Stop blinking and turn every lamp off."""
        self.show("off")

    def __enter__(self) -> Lights:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
