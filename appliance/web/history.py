"""The 24-hour history bar of each table: one cell per hour, colored by the worst state.

Built from what the state store keeps, with these rules (kept simple on purpose):

1. The window is 24 one-hour cells in UTC, the last one being the current hour.
2. A table's state over time comes from the "state" events (``"old -> new: reason"``).
   Tables named in the reason take the new state; the others are capped at it (the
   overall state is the worst table's), or taken as ok when nothing was known of them.
   A reason naming no table (the source is down, all is well) applies to every table.
   Before the window's first change a table is in that change's old state; with no
   change in the window, in its current state.
3. A cell shows the worst state its table was in during that hour; the current hour
   also counts the table's state right now, so the last cell agrees with its badge.
4. An hour in which no sync pass finished is grey ("no sync ran": the agent was down or
   not yet installed), as far back as the run records reach (the store keeps the last
   ``RUNS_KEPT`` runs; older hours are judged by rule 2 alone).

The inputs are small whatever the log's length: the state changes of the last day and
the hours that saw a pass (``Passes``), both read with bounded queries (``reading``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..clock import parse_iso
from ..health.status import SEVERITY, worst

HOURS = 24
NONE = "none"  # no sync ran: shown grey
_WHAT = {NONE: "no sync ran"}
_CHANGE = re.compile(r"^(\w+) -> (\w+): (.*)$", re.S)


@dataclass(frozen=True)
class Cell:
    """One hour of one table; ``title`` is its tooltip ("22 Nov 15:00-16:00 UTC: ok")."""

    start: datetime
    state: str  # one of SEVERITY, or NONE
    title: str


def _hour_label(start: datetime) -> str:
    return f"{start:%d %b %H:%M}-{start + timedelta(hours=1):%H:%M} UTC"


@dataclass(frozen=True)
class Passes:
    """When sync passes finished: the hours that saw one, and how far the records reach."""

    hours: frozenset[datetime]  # starts (UTC) of the hours in which a pass finished
    reach: datetime | None  # the oldest pass on record; None when none ever ran
    complete: bool  # True when no record was dropped (the store keeps RUNS_KEPT)

    @classmethod
    def of(cls, finished: list[datetime], complete: bool = True) -> Passes:
        """Return the Passes of these finish times."""
        hours = frozenset(f.replace(minute=0, second=0, microsecond=0) for f in finished)
        return cls(hours, min(finished, default=None), complete)


@dataclass(frozen=True)
class _Change:
    at: datetime
    old: str
    new: str
    reason: str


def _changes(events: list[dict]) -> list[_Change]:
    """Return the state changes among ``events``, oldest first."""
    out = []
    for e in events:
        m = _CHANGE.match(e["message"]) if e["kind"] == "state" else None
        at = parse_iso(e["at"])
        if m and at:
            out.append(_Change(at, m.group(1), m.group(2), m.group(3)))
    return sorted(out, key=lambda c: c.at)


def _names(reason: str, tables: list[str]) -> set[str]:
    """Return the tables a reason names (whole names only: "orders" is not "orders_x")."""
    return {t for t in tables if re.search(rf"(?<![\w.]){re.escape(t)}(?!\w)", reason)}


def _apply(change: _Change, current: dict[str, str], tables: list[str]) -> None:
    named = _names(change.reason, tables) or set(tables)
    for t in tables:
        if t in named:
            current[t] = change.new
        elif current[t] == NONE:
            current[t] = "ok"  # another table is the reason; nothing says this one is worse
        elif SEVERITY.index(current[t]) > SEVERITY.index(change.new):
            current[t] = change.new  # capped: no table is worse than the overall state


def _known(state: str) -> str:
    return state if state in SEVERITY else NONE  # "start": nothing ran before


def window_start(now: datetime) -> datetime:
    """Return the start of the first of the 24 hours shown at ``now``."""
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def bars(
    status: dict, events: list[dict], passes: Passes, now: datetime, interval: float
) -> dict[str, list[Cell]]:
    """Return 24 cells per table of ``status``, oldest first (see the module's rules)."""
    tables = [t["name"] for t in status["tables"]]
    first = window_start(now)
    changes = [c for c in _changes(events) if c.at >= first]
    if changes:
        current = {t: _known(changes[0].old) for t in tables}
    else:
        current = {t["name"]: t["state"] for t in status["tables"]}
    out: dict[str, list[Cell]] = {t: [] for t in tables}
    i = 0
    for h in range(HOURS):
        start = first + timedelta(hours=h)
        end = start + timedelta(hours=1)
        seen = {t: {current[t]} for t in tables}
        while i < len(changes) and changes[i].at < end:
            _apply(changes[i], current, tables)
            for t in tables:
                seen[t].add(current[t])
            i += 1
        idle = _idle(start, min(end, now), passes, interval)
        label = _hour_label(start)  # once per hour, not per table: strftime is slow
        if h == HOURS - 1:
            for t in status["tables"]:
                seen[t["name"]].add(t["state"])
        for t in tables:
            states = seen[t] - {NONE}
            state = NONE if idle or not states else worst(states)
            out[t].append(Cell(start, state, f"{label}: {_WHAT.get(state, state)}"))
    return out


def _idle(start: datetime, end: datetime, passes: Passes, interval: float) -> bool:
    """Return True when no pass finished in the hour although the records reach it."""
    if passes.reach is None:
        return True  # no pass was ever recorded: nothing has synced yet
    oldest_hour = passes.reach.replace(minute=0, second=0, microsecond=0)
    if start < oldest_hour and not passes.complete:
        return False  # before the oldest record kept: judged by the state changes alone
    if (end - start).total_seconds() < 3 * interval:
        return False  # too short a span to expect a pass
    return start not in passes.hours
