"""The status document as text for people (``appliance status``)."""

from __future__ import annotations

import click

from ..clock import format_duration

COLORS = {"ok": "green", "lagging": "yellow", "drift": "yellow", "maintenance": "blue", "outage": "red"}


def render(doc: dict, color: bool = False) -> str:
    """Return a few lines: the state and reason, the agent, the source, one line per table."""

    def paint(text: str, state: str) -> str:
        return click.style(text, fg=COLORS.get(state), bold=True) if color else text

    lines = [
        f"{paint(doc['state'].upper(), doc['state'])} since {doc['since']}"
        + (" (acknowledged)" if doc["acknowledged"] else ""),
        f"  {doc['reason']}",
    ]
    agent = doc["agent"]
    if agent["running"]:
        lines.append(f"  agent: running (last heartbeat {agent['last_heartbeat']})")
    else:
        lines.append(f"  agent: NOT RUNNING since {agent['last_heartbeat'] or 'never started'}")
    src = doc["source"]
    lines.append(
        f"  source: tunnel {src['tunnel']}, database {src['database']}"
        + (f" - {src['last_error']}" if src["last_error"] else "")
    )
    for t in doc["tables"]:
        lag = "never synced" if t["lag_seconds"] is None else f"lag {format_duration(t['lag_seconds'])}"
        extra = f" - {t['error']}" if t.get("error") else (f" ({t['note']})" if t.get("note") else "")
        lines.append(
            f"  {paint(t['state'].ljust(11), t['state'])} {t['name']}: {t['rows']} rows, {lag}{extra}"
        )
    return "\n".join(lines)
