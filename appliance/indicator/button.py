"""The button: a short press acknowledges, a hold shows the address.

gpiozero calls these handlers on its own threads; they only record what happened and
wake the loop, which does the work (an acknowledgement writes to the state store).
The acknowledgement is taken on release, so a hold does not also acknowledge.
"""

from __future__ import annotations

import threading
from typing import Any

PRESS, ACK, HOLD = "press", "ack", "hold"


class ButtonEvents:
    """Turn a gpiozero ``Button``'s press, hold and release into requests for the loop."""

    def __init__(self, button: Any, wakeup: threading.Event) -> None:
        self._button = button
        self._wakeup = wakeup
        self._lock = threading.Lock()
        self._pending: list[str] = []
        self._held = False
        button.when_pressed = self._pressed
        button.when_held = self._on_held
        button.when_released = self._released

    def _add(self, event: str) -> None:
        with self._lock:
            self._pending.append(event)
        self._wakeup.set()

    def _pressed(self) -> None:
        self._held = False
        self._add(PRESS)  # wakes the display at once, before we know press or hold

    def _on_held(self) -> None:
        self._held = True
        self._add(HOLD)

    def _released(self) -> None:
        if not self._held:
            self._add(ACK)
        self._held = False

    def take(self) -> list[str]:
        """Return the events since the last call, oldest first, and forget them."""
        with self._lock:
            events, self._pending = self._pending, []
        return events

    def close(self) -> None:
        """Detach from the button."""
        self._button.when_pressed = self._button.when_held = self._button.when_released = None

    def __enter__(self) -> ButtonEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
