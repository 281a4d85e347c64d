"""Time, one rule everywhere: UTC, ISO-8601 with a Z, and short human durations.

Every timestamp the appliance stores, serves or prints goes through ``iso``; every
duration a person reads goes through ``format_duration``; every duration a person writes
(the config, the CLI) goes through ``parse_duration``.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone, tzinfo
from typing import overload

UTC = timezone.utc  # datetime.UTC is 3.11+; the flasher reads configs on a stock Mac's 3.9
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


MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def local_time(
    when: datetime, now: datetime, tz: tzinfo | None = None, seconds: bool = True, zone: bool = True
) -> str:
    """Return ``when`` as people read it here: "14:02:05 CET" today, else "21 Nov 14:02 CET".

    The one rule for every place a person reads a time (the CLI, the page, the OLED): local
    time with its zone, the date only when it is not today. Stored times stay UTC (``iso``).
    ``zone=False`` leaves the zone out, for a small screen that shows it once for all times.
    """
    local, today = when.astimezone(tz), now.astimezone(tz)
    zone_name = (local.tzname() or "") if zone else ""
    if local.date() == today.date():
        clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
        return f"{clock} {zone_name}".rstrip()
    day = f"{local.day} {MONTHS[local.month - 1]}" + ("" if local.year == today.year else f" {local.year}")
    return f"{day} {local:%H:%M} {zone_name}".rstrip()


def age(when: datetime, now: datetime) -> str:
    """Return how long ago ``when`` was ("3m ago"); a time ahead of ``now`` is not an age."""
    seconds = (now - when).total_seconds()
    if seconds < -1:  # a clock that jumped: say so rather than a negative age
        return f"{format_duration(-seconds)} in the future"
    return "just now" if seconds < 1 else f"{format_duration(seconds)} ago"


def when(text: str | None, now: datetime, tz: tzinfo | None = None, never: str = "never") -> str:
    """Return a stored ISO time for people: "14:02:05 CET (3m ago)", or ``never``."""
    dt = parse_iso(text)
    if dt is None:
        return never
    return f"{local_time(dt, now, tz)} ({age(dt, now)})"


_TIME_ERROR = 5  # adjtimex(2): "clock not synchronized"


def synchronised(systemd_dir: str = "/run/systemd/system") -> bool | None:
    """Return whether the system clock is synchronised; None where that cannot be told.

    A Raspberry Pi has no real-time clock: after boot its time is wrong until NTP sets it,
    and lag judged on it would be wrong too. The kernel knows (adjtimex, read-only, as
    timedatectl's NTPSynchronized uses). Where systemd does not run (CI, containers,
    laptops) the answer is None, which counts as synchronised (BRIEF 9).
    """
    import ctypes
    import os

    if not os.path.isdir(systemd_dir):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        timex = ctypes.create_string_buffer(512)  # struct timex, zeroed: modes = 0 reads only
        state = libc.adjtimex(timex)
    except (OSError, AttributeError):
        return None
    return None if state < 0 else state != _TIME_ERROR
