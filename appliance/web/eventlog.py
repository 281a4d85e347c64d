"""The event log for people: a state change says what happened and how long the last state lasted.

The store keeps ``"outage -> ok: All 2 tables are up to date."``; the page shows "Back to ok
after outage (it lasted 25s)". Events come newest first; a change's duration is the time
since the change before it, when that one is on the same page.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from ..clock import age, format_duration, parse_iso

_CHANGE = re.compile(r"^(\w+) -> (\w+): (.*)$", re.S)
WORDS = {"ok": "ok", "lagging": "lagging", "drift": "drift", "maintenance": "maintenance", "outage": "outage"}
RECENT = timedelta(hours=1)  # how long the page says that an alert just ended


def readable(events: list[dict]) -> list[dict]:
    """Return the events with ``title`` (and ``lasted``) added to every state change."""
    out = []
    for i, e in enumerate(events):
        m = _CHANGE.match(e.get("message") or "") if e.get("kind") == "state" else None
        if m is None:
            out.append(e)
            continue
        was, now, reason = m.groups()
        older = next((o for o in events[i + 1 :] if o.get("kind") == "state"), None)
        lasted = _between(older, e) if older and was != "start" else None
        if was == "start":
            title = f"Started: {now}"
        elif now == "ok":
            title = f"Back to ok after {was}"
        else:
            title = f"{now.capitalize()} (was {was})"
        if lasted is not None:
            title += f"; the {was} lasted {format_duration(lasted)}"
        out.append({**e, "title": title, "detail": reason, "lasted": lasted})
    return out


def _between(older: dict, newer: dict) -> float | None:
    a, b = parse_iso(older.get("at")), parse_iso(newer.get("at"))
    return (b - a).total_seconds() if a and b and b >= a else None


def recovered(events: list[dict], state: str, now: datetime) -> str:
    """Return "Recovered from an outage 12m ago (it lasted 25s)." for an hour after one, else ""."""
    if state != "ok":
        return ""
    for e in readable(events):
        if "title" not in e:
            continue
        m = _CHANGE.match(e["message"])
        at = parse_iso(e.get("at"))
        if not m or m.group(2) != "ok" or at is None or now - at > RECENT:
            return ""
        was = m.group(1)
        if was not in ("outage", "maintenance", "drift", "lagging"):
            return ""
        lasted = f" (it lasted {format_duration(e['lasted'])})" if e.get("lasted") is not None else ""
        article = "an" if was[0] in "aeiou" else "a"
        return f"Recovered from {article} {was} {age(at, now)}{lasted}."
    return ""
