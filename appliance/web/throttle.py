"""Wrong tokens, counted per client: guessing the actions' token is slowed to a crawl."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

WINDOW = 60.0  # seconds a wrong token counts against its client
LIMIT = 5  # wrong tokens per client within WINDOW before it must wait
CLIENTS_KEPT = 10_000  # bounded memory, whatever a LAN throws at the page


class Throttle:
    """Remember recent failures per client address; say when one must wait."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str, now: float) -> deque[float]:
        times = self._failures.get(client, deque())
        while times and now - times[0] > WINDOW:
            times.popleft()
        return times

    def wait(self, client: str) -> float:
        """Return the seconds ``client`` must wait before trying a token again (0: go ahead)."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            return WINDOW - (now - times[0]) if len(times) >= LIMIT else 0.0

    def failed(self, client: str) -> None:
        """Count one wrong token from ``client``."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            times.append(now)
            self._failures[client] = times
            if len(self._failures) > CLIENTS_KEPT:  # forget the oldest client first
                self._failures.pop(next(iter(self._failures)))
