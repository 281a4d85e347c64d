"""Time, one rule everywhere: UTC, ISO-8601 with a Z, and short human durations.

Every timestamp the appliance stores, serves or prints goes through ``iso``; every
duration a person reads goes through ``format_duration``; every duration a person writes
(the config, the CLI) goes through ``parse_duration``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import overload

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def iso(dt: datetime) -> str: ...
@overload
def iso(dt: None) -> None: ...
@overload
def iso(dt: datetime | None) -> str | None: ...


def iso(dt: datetime | None) -> str | None:
    """Return ISO-8601 UTC with a Z, or None."""
    if dt is None:
        return None
    return dt.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_iso(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_duration(text: str) -> float:
    """Return the seconds in a duration such as "30s", "10m", "1h", "2d" or "500ms"."""
    m = _DURATION.match(str(text))
    if not m:
        raise ValueError(f'"{text}" is not a duration; write it like "30s", "10m", "1h" or "2d"')
    return float(m.group(1)) * _UNITS[m.group(2)]


def format_duration(seconds: float) -> str:
    """Return a short human form of a number of seconds ("45s", "12m", "3h 5m")."""
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m"
    if seconds < 86400:
        h, m = divmod(int(seconds) // 60, 60)
        return f"{h}h {m}m" if m else f"{h}h"
    d, h = divmod(int(seconds) // 3600, 24)
    return f"{d}d {h}h" if h else f"{d}d"
