"""What is planned: ``[[maintenance]]`` windows and ``[[announcements]]`` of schema changes,
checked at load like every other key.

Once::

    [[maintenance]]
    start = "2026-12-06T22:00"      # local to ``timezone`` unless it carries an offset
    end = "2026-12-07T02:00"        # or: duration = "4h"
    reason = "PostgreSQL upgrade"

Every week::

    [[maintenance]]
    weekdays = ["sun"]
    time = "02:00"                  # in ``timezone``; a window may cross midnight
    duration = "2h"
    timezone = "Europe/Berlin"      # default UTC
    tables = ["public.orders"]      # default: every table
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..clock import parse_duration
from .settings import Problem

# change text -> (drift kinds it announces, the group holding the column, or None)
_FORMS = [
    (re.compile(r"^add column (\S+)(?: .+)?$", re.I), ("column_added",), 1),
    (re.compile(r"^drop column (\S+)$", re.I), ("column_dropped",), 1),
    (re.compile(r"^alter column (\S+) type .+$", re.I), ("type_changed", "type_widened"), 1),
    (re.compile(r"^rename column (\S+) to (\S+)$", re.I), ("column_renamed",), 1),
    (re.compile(r"^add table (\S+)$", re.I), ("table_added",), 1),
    (re.compile(r"^drop table$", re.I), ("table_dropped",), None),
]
FORMS_HELP = (
    '"add column NAME [TYPE]", "drop column NAME", "alter column NAME type TYPE", '
    '"rename column OLD to NEW", "add table NAME" or "drop table"'
)


def parse_change(text: str) -> tuple[tuple[str, ...], str]:
    """Return (the drift kinds, the column or table) a change text announces; ValueError if none."""
    words = " ".join(str(text).split())
    for pattern, kinds, group in _FORMS:
        m = pattern.match(words)
        if m:
            return kinds, (m.group(group).strip('"') if group else "")
    raise ValueError(f"{text!r} is not a change this appliance can match; write one of {FORMS_HELP}")


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = {"start", "end", "duration", "weekdays", "time", "timezone", "tables", "reason"}
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


def maintenance_blocks(raw: Any, tables: set[str], problems: list[Problem]) -> list[dict]:
    """Return the checked windows (durations in seconds); record every problem."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        problems.append(Problem("maintenance", "must be [[maintenance]] blocks", "see the README's example"))
        return []
    out = []
    for i, block in enumerate(raw):
        before = len(problems)
        checked = _block(f"maintenance[{i}]", block, tables, problems)
        if len(problems) == before:
            out.append(checked)
    return out


def _block(prefix: str, block: dict, tables: set[str], problems: list[Problem]) -> dict:
    def problem(key: str, message: str, fix: str) -> None:
        problems.append(Problem(f"{prefix}.{key}" if key else prefix, message, fix))

    for extra in sorted(set(block) - KEYS):
        problem(extra, "unknown key", f"known keys: {', '.join(sorted(KEYS))}")
    out: dict[str, Any] = {"reason": str(block.get("reason") or "planned maintenance")}
    zone = block.get("timezone") or "UTC"
    try:
        ZoneInfo(str(zone))
        out["timezone"] = str(zone)
    except (ZoneInfoNotFoundError, ValueError):
        problem("timezone", f"{zone!r} is not a time zone", 'e.g. timezone = "Europe/Berlin"')
    if "duration" in block:
        try:
            out["duration"] = parse_duration(block["duration"])
        except ValueError as e:
            problem("duration", str(e), 'e.g. duration = "2h"')
    listed = block.get("tables") or []
    unknown = [t for t in listed if t not in tables] if isinstance(listed, list) else []
    if not isinstance(listed, list) or unknown:
        problem(
            "tables",
            f"not configured tables: {', '.join(map(str, unknown or [listed]))}",
            "use names of [[tables]]",
        )
    out["tables"] = list(listed) if isinstance(listed, list) else []
    if "start" in block:
        for key in ("start", "end"):
            if key in block and not _is_time(block[key]):
                problem(key, f"{block[key]!r} is not a date and time", f'e.g. {key} = "2026-12-06T22:00"')
        if ("end" in block) == ("duration" in block):
            problem("", "a window with start needs end or duration (one of them)", 'add duration = "2h"')
        out.update({k: str(block[k]) for k in ("start", "end") if k in block})
        if "end" in block and _is_time(block["start"]) and _is_time(block["end"]):
            if datetime.fromisoformat(str(block["end"])) <= datetime.fromisoformat(str(block["start"])):
                problem("end", "is not after start", "end must come after start")
    else:
        days = block.get("weekdays")
        if not isinstance(days, list) or not days or any(d not in WEEKDAYS for d in days):
            problem("weekdays", f"{days!r} is not a list of days", f"use some of {', '.join(WEEKDAYS)}")
        if not isinstance(block.get("time"), str) or not _TIME.match(block["time"]):
            problem("time", f"{block.get('time')!r} is not a time of day", 'e.g. time = "02:00"')
        if "duration" not in block:
            problem("duration", "is required for a weekly window", 'e.g. duration = "2h"')
        out.update({"weekdays": list(days or []), "time": str(block.get("time"))})
    return out


def _is_time(value: Any) -> bool:
    try:
        datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        return True
    except ValueError:
        return False


def announcement_blocks(raw: Any, tables: set[str], problems: list[Problem]) -> list[dict]:
    """Return the checked ``[[announcements]]`` (table, change, on, note, auto_accept)."""
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(b, dict) for b in raw):
        problems.append(Problem("announcements", "must be [[announcements]] blocks", "see the README"))
        return []
    out = []
    for i, block in enumerate(raw):
        prefix = f"announcements[{i}]"
        try:
            kinds, subject = parse_change(block.get("change", ""))
        except ValueError as e:
            problems.append(Problem(f"{prefix}.change", str(e)))
            continue
        if block.get("table") not in tables:
            problems.append(Problem(f"{prefix}.table", f"{block.get('table')!r} is not a configured table"))
            continue
        try:
            on = date.fromisoformat(str(block.get("on")))
        except ValueError:
            problems.append(
                Problem(f"{prefix}.on", f"{block.get('on')!r} is not a date", 'e.g. on = "2026-12-10"')
            )
            continue
        out.append(
            {
                "table": block["table"],
                "change": " ".join(str(block["change"]).split()),
                "kinds": list(kinds),
                "subject": subject,
                "on": on.isoformat(),
                "note": str(block.get("note") or ""),
                "auto_accept": bool(block.get("auto_accept", False)),
                "by": "config",
                "at": "",
            }
        )
    return out
