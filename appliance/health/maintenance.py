"""Planned maintenance windows: when the source going down is expected, not an outage.

Windows come from the config (``[[maintenance]]``: once, with ``start`` and ``end`` or
``duration``, or every week on ``weekdays`` at ``time`` in ``timezone``) and from people at
run time (``appliance maintenance start --for 2h``, the page), kept in the state store.
Recurring windows are computed in their own time zone, so a window at 02:00 stays at
02:00 local across daylight-saving changes; one that crosses midnight belongs to the day
it starts. Windows that overlap are merged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from ..clock import iso, local_time, parse_iso
from ..config import Config
from .store import StateStore

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MANUAL = "maintenance"  # the state store's key for windows started by people


@dataclass(frozen=True)
class Window:
    """One window: from ``start`` to ``end`` (UTC), why, and which tables (empty: all)."""

    start: datetime
    end: datetime
    reason: str = "planned maintenance"
    tables: tuple[str, ...] = ()
    by: str = "config"

    def covers(self, table: str | None = None) -> bool:
        """True for every table, or only for the listed ones."""
        return not self.tables or table is None or table in self.tables

    def as_dict(self) -> dict:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "reason": self.reason,
            "tables": list(self.tables),
            "by": self.by,
        }


def _occurrences(block: dict, around: datetime) -> list[Window]:
    """Return the windows of one ``[[maintenance]]`` block near ``around`` (a week either side)."""
    reason, tables = block.get("reason") or "planned maintenance", tuple(block.get("tables") or ())
    if block.get("start"):
        start = _aware(block["start"], block.get("timezone") or "UTC")
        end = _aware(block["end"], block.get("timezone") or "UTC") if block.get("end") else None
        return [Window(start, end or start + timedelta(seconds=block["duration"]), reason, tables)]
    zone = ZoneInfo(block.get("timezone") or "UTC")
    hour, minute = (int(x) for x in block["time"].split(":"))
    days = {WEEKDAYS.index(d) for d in block["weekdays"]}
    local_today = around.astimezone(zone).date()
    out = []
    for offset in range(-8, 9):
        day = local_today + timedelta(days=offset)
        if day.weekday() in days:
            # Wall-clock time in the zone: zoneinfo picks the right offset on either side of
            # a daylight-saving change; the duration is then real elapsed time.
            start = datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone).astimezone(UTC)
            out.append(Window(start, start + timedelta(seconds=block["duration"]), reason, tables))
    return out


def _aware(text: str, zone: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=ZoneInfo(zone))).astimezone(UTC)


def windows(config: Config, store: StateStore | None, now: datetime) -> list[Window]:
    """Return every known window around ``now`` (config and run time), merged, by start."""
    found = [w for block in config.maintenance for w in _occurrences(block, now)]
    manual = store.get(MANUAL) if store is not None else None
    if manual:
        found.append(
            Window(
                parse_iso(manual["start"]) or now,
                parse_iso(manual["end"]) or now,
                manual.get("reason") or "maintenance",
                tuple(manual.get("tables") or ()),
                manual.get("by") or "cli",
            )
        )
    return merge(sorted(found, key=lambda w: w.start))


def merge(ordered: list[Window]) -> list[Window]:
    """Merge windows that overlap or touch and cover the same tables."""
    out: list[Window] = []
    for w in ordered:
        last = out[-1] if out else None
        if last is not None and last.tables == w.tables and w.start <= last.end:
            reason = last.reason if w.reason in last.reason else f"{last.reason}; {w.reason}"
            out[-1] = Window(last.start, max(last.end, w.end), reason, last.tables, last.by)
        else:
            out.append(w)
    return out


def active(config: Config, store: StateStore | None, now: datetime) -> Window | None:
    """Return the window ``now`` is in, or None."""
    return next((w for w in windows(config, store, now) if w.start <= now < w.end), None)


def upcoming(config: Config, store: StateStore | None, now: datetime) -> Window | None:
    """Return the next window that has not started yet, or None."""
    return next((w for w in windows(config, store, now) if w.start > now), None)


def start_now(
    config: Config, store: StateStore, seconds: float, reason: str, now: datetime, by: str
) -> Window:
    """Start a window now for ``seconds`` (replacing one started earlier by hand)."""
    window = Window(now, now + timedelta(seconds=seconds), reason or "maintenance", (), by)
    store.put(MANUAL, window.as_dict())
    until = local_time(window.end, now, seconds=False)
    store.event("maintenance", f"maintenance started by {by} until {until}: {window.reason}")
    return window


def end_now(store: StateStore, by: str) -> bool:
    """End the window started by hand; False when there was none."""
    if not store.get(MANUAL):
        return False
    store.put(MANUAL, None)
    store.event("maintenance", f"maintenance ended by {by}")
    return True
