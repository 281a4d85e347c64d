"""Read the status document (BRIEF section 3) into what the lights and the OLED show."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from ..health.status import SEVERITY as STATES

# health's order of the states (BRIEF section 3); a higher number is worse.
SEVERITY = {state: rank for rank, state in enumerate(STATES)}

WORDS = {
    "ok": "OK",
    "lagging": "LAGGING",
    "drift": "DRIFT",
    "maintenance": "MAINTENANCE",
    "outage": "OUTAGE",
    "unknown": "NO STATUS",
}


def never_synced(status: dict[str, Any]) -> bool:
    """Return whether no table has synced yet: a fresh install, nothing can be behind."""
    entries = tables(status)
    return (
        status.get("state") in ("ok", "lagging")
        and bool(entries)
        and not any(t.get("last_sync") for t in entries)
    )


def word_for(status: dict[str, Any]) -> str:
    """Return the big word of the display: the state, or how far a fresh install got."""
    if never_synced(status):
        # Not LAGGING: nothing has been copied yet, so nothing is late.
        return "STARTING" if agent_running(status) else "NO SYNC YET"
    state = str(status.get("state") or "unknown")
    return WORDS.get(state, state.upper())


def agent_running(status: dict[str, Any]) -> bool:
    """Return whether the status says the sync agent is running (assume so when unsaid)."""
    agent = status.get("agent") or {}
    return bool(agent.get("running", True))


def tables(status: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the status's table entries (an empty list when there are none)."""
    return [t for t in status.get("tables") or [] if isinstance(t, dict)]


def pattern_for(status: dict[str, Any]) -> str:
    """Return the name of the light pattern (see ``leds.PATTERNS``) for a status document."""
    if not agent_running(status):
        return "agent_down"  # wins over the state: the data behind it is going stale
    state = status.get("state")
    if state == "outage":
        return "outage_ack" if status.get("acknowledged") else "outage"
    if state == "drift":
        return "frozen" if any(t.get("frozen") for t in tables(status)) else "drift"
    if state in ("ok", "lagging", "maintenance"):
        return state
    # A state we do not know means the appliance itself is not right: same as agent down.
    return "agent_down"


def worst_table(status: dict[str, Any]) -> dict[str, Any] | None:
    """Return the table that most needs attention: worst state, then frozen, then most lag."""

    def badness(t: dict[str, Any]) -> tuple[int, bool, float]:
        lag, state = t.get("lag_seconds"), t.get("state")
        never = t.get("last_sync") is None and lag is None
        return (
            SEVERITY.get(state, 0) if isinstance(state, str) else 0,
            bool(t.get("frozen")),
            math.inf if never else float(lag or 0.0),
        )

    entries = tables(status)
    return max(entries, key=badness) if entries else None


def parse_time(text: Any) -> datetime | None:
    """Return an ISO-8601 timestamp as an aware datetime (naive ones are UTC), or None."""
    if not text or not isinstance(text, str):
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def unreadable(error: BaseException) -> dict[str, Any]:
    """Return the status document shown when the real one cannot be read."""
    return {
        "state": "unknown",
        "since": None,
        "reason": f"Status unreadable: {error}",
        "acknowledged": False,
        "agent": {"running": False, "last_heartbeat": None},
        "source": {},
        "tables": [],
    }
