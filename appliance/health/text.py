"""The status document as text for people (``appliance status``).

Times follow the one rule of ``clock``: local time with its zone and an age. Every message
is said once: an error already in the reason is not repeated on the source or table line.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo

import click

from ..clock import local_time, parse_iso, utcnow, when

_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: object) -> str:
    """Return ``text`` with control characters escaped (\\x1b, \\r ...) and one line per
    line break kept: names and messages from the source must not drive the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), str(text))


COLORS = {"ok": "green", "lagging": "yellow", "drift": "yellow", "maintenance": "blue", "outage": "red"}


def _agent_line(agent: dict, now: datetime, tz: tzinfo | None) -> str:
    beat = agent.get("last_heartbeat")
    if agent.get("running"):
        return f"  agent: running, last heartbeat {when(beat, now, tz)}"
    if not beat:
        return "  agent: NOT RUNNING: it has never run with this state folder"
    return f"  agent: NOT RUNNING, last heartbeat {when(beat, now, tz)}"


def render(doc: dict, color: bool = False, now: datetime | None = None, tz: tzinfo | None = None) -> str:
    """Return a few lines: the state and reason, the agent, the source, one line per table."""
    now = now or utcnow()
    clean = _clean(doc)
    assert isinstance(clean, dict)
    return "\n".join(_lines(clean, color, now, tz))


def _clean(value: object) -> object:
    """Return the document with every text printable and on one line (before any colour)."""
    if isinstance(value, str):
        return printable(value).replace("\n", "\\n")
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _lines(doc: dict, color: bool, now: datetime, tz: tzinfo | None) -> list[str]:
    def paint(text: str, state: str) -> str:
        return click.style(text, fg=COLORS.get(state), bold=True) if color else text

    since = parse_iso(doc.get("since"))
    lines = [
        f"{paint(doc['state'].upper(), doc['state'])} since {when(doc.get('since'), now, tz)}"
        + (" (acknowledged)" if doc["acknowledged"] else "")
        if since
        else paint(doc["state"].upper(), doc["state"]),
        f"  {doc['reason']}",
        _agent_line(doc["agent"], now, tz),
    ]
    windows = doc.get("maintenance") or {}
    if windows.get("next"):
        nxt = windows["next"]
        start, end = (local_time(parse_iso(nxt[k]) or now, now, tz, seconds=False) for k in ("start", "end"))
        lines.append(f"  next maintenance: {start} until {end}: {nxt['reason']}")
    for a in doc.get("announcements") or []:
        lines.append(f"  announced for {a['on']}: {a['table']}: {a['change']}")
    said = [doc["reason"]]
    src = doc["source"]
    error = src.get("last_error") or ""
    fresh_error = error and not any(error in s for s in said)
    lines.append(
        f"  source: tunnel {src['tunnel']}, database {src['database']}"
        + (f" - {error}" if fresh_error else "")
    )
    said.append(error)
    if src.get("clock_note"):
        lines.append(f"  clock: {src['clock_note']}")
    for t in doc["tables"]:
        synced = "never synced" if not t.get("last_sync") else f"synced {when(t['last_sync'], now, tz)}"
        table_error = t.get("error") or ""
        if table_error and not any(table_error in s for s in said if s):
            extra = f" - {table_error}"
        else:
            extra = f" ({t['note']})" if t.get("note") and not table_error else ""
        lines.append(
            f"  {paint(t['state'].ljust(11), t['state'])} {t['name']}: {t['rows']} rows, {synced}{extra}"
        )
    return lines
