"""Health: turn the state store into the status document of BRIEF section 3.

States, most severe first: outage, maintenance, drift, lagging, ok. The state follows
the data: a dead agent is reported in ``agent.running`` (and by its own light), and its
tables become lagging, then outage, as their lag grows (BRIEF 9). Readers compute the
document from the state store alone, so they work while the agent is down.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .config import Config, format_duration
from .state import StateStore, iso, parse_iso, utcnow

SEVERITY = ["ok", "lagging", "drift", "maintenance", "outage"]
EXIT_CODES = {"ok": 0, "lagging": 1, "drift": 1, "maintenance": 1, "outage": 2}
SOURCE_DOWN = {"tunnel": "Tunnel down", "hostkey": "Host key changed or unknown - refusing to connect",
               "login": "Login refused", "database": "Database unreachable",
               "secret": "A secret cannot be read", "replica": "The replica cannot be written"}


def worst(states) -> str:
    return max(states, key=SEVERITY.index, default="ok")


def _agent(config: Config, store: StateStore, now: datetime) -> dict:
    info = store.get("agent", {})
    beat = parse_iso(info.get("heartbeat"))
    interval = float(info.get("interval") or config.sync.interval)
    fresh = beat is not None and (now - beat).total_seconds() < max(3 * interval, 30)
    return {"running": bool(info.get("running")) and fresh,
            "last_heartbeat": info.get("heartbeat"), "pid": info.get("pid")}


def _table(config: Config, t, rec: dict, now: datetime, replay_lag: float) -> tuple[dict, str]:
    """Return (the table's entry, a reason sentence) for one configured table."""
    last = parse_iso(rec.get("last_sync"))
    lag = (now - last).total_seconds() + replay_lag if last else None
    warn, limit = config.sync.warn_lag, config.sync.max_lag
    if rec.get("last_error"):
        state, reason = "outage", f"{t.name}: {rec['last_error']}"
    elif lag is None:
        state, reason = "lagging", f"{t.name} has not finished its first sync yet."
    elif lag > limit:
        state = "outage"
        reason = (f"{t.name} has not synced for {format_duration(lag)} "
                  f"(more than max_lag {format_duration(limit)}).")
    elif lag > warn:
        state = "lagging"
        reason = (f"{t.name} is {format_duration(lag)} behind "
                  f"(more than warn_lag {format_duration(warn)}).")
    else:
        state, reason = "ok", ""
    entry = {"name": t.name, "replica_name": t.replica_name, "state": state,
             "rows": int(rec.get("rows") or 0), "last_sync": rec.get("last_sync"),
             "lag_seconds": round(lag, 3) if lag is not None else None,
             "drift": [], "frozen": False,
             "error": rec.get("last_error") or None, "note": rec.get("note") or None}
    return entry, reason


def _threshold_since(entries: list[dict], state: str, config: Config) -> datetime | None:
    """Return when lag crossed the threshold of ``state`` (for a state reached by ageing)."""
    limit = {"lagging": config.sync.warn_lag, "outage": config.sync.max_lag}.get(state)
    times = [parse_iso(e["last_sync"]) + timedelta(seconds=limit)
             for e in entries if limit and e["state"] == state and e["last_sync"]]
    return min(times) if times else None


def build(config: Config, store: StateStore, now: datetime | None = None) -> dict:
    """Return the status document (BRIEF section 3) from the state store."""
    now = now or utcnow()
    source = store.get("source", {})
    records = store.tables()
    replay_lag = float(source.get("replay_lag") or 0.0)
    entries, reasons = [], {}
    for t in config.tables:
        entry, reason = _table(config, t, records.get(t.name, {}), now, replay_lag)
        entries.append(entry)
        reasons.setdefault(entry["state"], reason)
    state = worst(e["state"] for e in entries)
    reason = reasons.get(state, "")
    tunnel = source.get("tunnel", "direct" if config.ssh is None else "down")
    if source.get("down"):
        state = "outage"
        reason = f"{SOURCE_DOWN.get(source.get('kind'), 'Source down')}: {source.get('last_error', '')}"
    if state == "ok":
        reason = f"All {len(entries)} tables are up to date."
    stored = store.get("health", {})
    if stored.get("state") == state:
        since = stored.get("since")
    else:
        since = iso(_threshold_since(entries, state, config) or now)
    ack = store.get("ack", {})
    return {
        "state": state, "since": since, "reason": reason,
        "acknowledged": ack.get("state") == state and ack.get("since") == since,
        "agent": _agent(config, store, now),
        "source": {"tunnel": tunnel, "database": source.get("database", "down"),
                   "last_error": source.get("last_error", "")},
        "tables": entries,
    }


def update(config: Config, store: StateStore, now: str | None = None) -> dict:
    """Recompute the status; on a state change record it, its event and its notifications."""
    from . import notify

    status = build(config, store, parse_iso(now) if now else None)
    stored = store.get("health", {})
    if stored.get("state") != status["state"]:
        store.put("health", {"state": status["state"], "since": status["since"],
                             "reason": status["reason"]})
        was = stored.get("state", "start")
        store.event("state", f"{was} -> {status['state']}: {status['reason']}",
                    at=status["since"])
        if was != "start" or status["state"] != "ok":  # a healthy first start is no news
            notify.enqueue(config, store, status, was)
    return status


def current_status(config: Config, now: datetime | None = None) -> dict:
    """Return the status document, reading the state store only (for readers)."""
    with StateStore(config.state_dir, readonly=True) as store:
        return build(config, store, now)


def acknowledge(config: Config, by: str = "cli") -> bool:
    """Mark the current alert as seen; False when there is nothing to acknowledge."""
    with StateStore(config.state_dir) as store:
        status = build(config, store)
        if status["state"] == "ok":
            return False
        store.put("ack", {"state": status["state"], "since": status["since"],
                          "at": iso(utcnow()), "by": by})
        store.event("ack", f"{status['state']} acknowledged by {by}")
        return True


def accept_drift(config: Config, table: str | None = None, by: str = "cli") -> bool:
    """Accept the drift of one table (or all): the live schema becomes the contract.

    The schema contract arrives with the drift checks; until then there is never drift to
    accept, so this returns False and changes nothing.
    """
    config.table(table) if table else None  # raises a clear ConfigError for unknown tables
    return False
