"""Announced schema changes: the source team says what ships when, and the drift it causes
is expected, not a surprise.

``--change`` is one of (BRIEF 9): ``add column NAME [TYPE]``, ``drop column NAME``,
``alter column NAME type TYPE``, ``rename column OLD to NEW``, ``add table NAME``,
``drop table``. A drift entry of the same table, the same kind of change and the same
column (where one is named) carries ``"expected": true`` and the announcement's text: it
still shows and still needs accepting, but it notifies nobody.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from ..clock import iso
from ..config import Config, Problem
from ..config.windows import parse_change
from ..errors import ConfigError
from . import notify
from .store import StateStore

KEY = "announcements"


def announce(
    config: Config,
    store: StateStore,
    table: str,
    change: str,
    on: date,
    note: str,
    by: str,
    now: datetime,
    auto_accept: bool = False,
) -> dict:
    """Record an announcement; return it. Raises ConfigError for an unknown table or change."""
    names = {t.name for t in config.tables}
    if table not in names:
        known = ", ".join(sorted(names))
        raise ConfigError([Problem("TABLE", f'no table "{table}" is configured', f"use one of: {known}")])
    try:
        kinds, subject = parse_change(change)
    except ValueError as e:
        raise ConfigError([Problem("--change", str(e))]) from None
    entry = {
        "table": table,
        "change": " ".join(change.split()),
        "kinds": list(kinds),
        "subject": subject,
        "on": on.isoformat(),
        "note": note,
        "auto_accept": auto_accept,
        "by": by,
        "at": iso(now),
    }
    store.put(KEY, [*store.get(KEY, []), entry])
    store.event("announce", f"{table}: {entry['change']} announced for {entry['on']} by {by}", table=table)
    _tell(config, store, entry, reminder=False)
    return entry


def _tell(config: Config, store: StateStore, entry: dict, reminder: bool) -> None:
    payload = notify.announcement_message(entry, reminder)
    for channel in notify.channels(config):
        store.enqueue(channel, payload)


def remind(config: Config, store: StateStore, today: date) -> list[dict]:
    """Queue one reminder per announcement that ships tomorrow; return those reminded."""
    done = set(store.get("announcements_reminded", []))
    due = [
        a
        for a in announcements(config, store)
        if date.fromisoformat(a["on"]) == today + timedelta(days=1) and _key(a) not in done
    ]
    for a in due:
        _tell(config, store, a, reminder=True)
        done.add(_key(a))
    if due:
        store.put("announcements_reminded", sorted(done))
    return due


def _key(a: dict) -> str:
    return f"{a['table']}|{a['change']}|{a['on']}"


def announcements(config: Config, store: StateStore) -> list[dict]:
    """Return every announcement: the config's and those made at run time, by date."""
    found = [*config.announcements, *store.get(KEY, [])]
    return sorted(found, key=lambda a: (a["on"], a["table"]))


def matching(entry: dict, table: str, known: list[dict]) -> dict | None:
    """Return the announcement a drift entry of ``table`` was announced by, or None."""
    for a in known:
        if a["table"] != table and not (
            entry["kind"] == "table_added" and a["subject"] == entry.get("value")
        ):
            continue
        if entry["kind"] not in a["kinds"]:
            continue
        column = entry.get("column") or ""
        if a["subject"] and a["kinds"][0].startswith(("column", "type")) and a["subject"] != column:
            continue
        return a
    return None


def mark_expected(drift: list[dict], table: str, known: list[dict]) -> list[dict]:
    """Return the drift entries with ``expected`` and ``announcement`` where one matches."""
    out = []
    for entry in drift:
        a = matching(entry, table, known)
        out.append({**entry, "expected": a is not None, **({"announcement": a["change"]} if a else {})})
    return out
