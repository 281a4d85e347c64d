"""Wait for a condition with a deadline (tests never sleep a fixed time and then assert)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 60.0, what: str = "the condition") -> T:
    """Return the first truthy value of ``predicate()``; fail the test if none comes in time.

    The timeout is a deadline for a hung system, not a measurement: latency belongs to the
    benchmarks (tests/bench/), so pick it generously.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)
