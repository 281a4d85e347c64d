"""Health: turn the state store into the status document of BRIEF section 3.

States, most severe first: outage, maintenance, drift, lagging, ok. The state follows
the data: a dead agent is reported in ``agent.running`` (and by its own light), and its
tables become lagging, then outage, as their lag grows (BRIEF 9). Readers compute the
document from the state store alone, so they work while the agent is down.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ..clock import format_duration, iso, local_time, parse_iso, synchronised, utcnow
from ..config import Config
from . import announce, maintenance
from .store import StateStore

CLOCK_SLACK = 60.0  # seconds a time may lie ahead of ours (clocks of two machines) before it is wrong
SEVERITY = ["ok", "lagging", "drift", "maintenance", "outage"]
EXIT_CODES = {"ok": 0, "lagging": 1, "drift": 1, "maintenance": 1, "outage": 2}
SOURCE_DOWN = {
    "tunnel": "Tunnel down",
    "hostkey": "Host key changed or unknown - refusing to connect",
    "login": "Login refused",
    "database": "Database unreachable",
    "secret": "A secret cannot be read",
    "replica": "The replica cannot be written",
}


def worst(states) -> str:
    return max(states, key=SEVERITY.index, default="ok")


def _agent(config: Config, store: StateStore, now: datetime) -> dict:
    info = store.get("agent", {})
    beat = parse_iso(info.get("heartbeat"))
    interval = float(info.get("interval") or config.sync.interval)
    age = (now - beat).total_seconds() if beat is not None else None
    # A heartbeat from the future (the clock moved back) proves nothing: not running.
    fresh = age is not None and -CLOCK_SLACK <= age < max(3 * interval, 30)
    return {
        "running": bool(info.get("running")) and fresh,
        "last_heartbeat": info.get("heartbeat"),
        "pid": info.get("pid"),
    }


def table_drift(store: StateStore, name: str) -> list[dict]:
    """Return a table's schema drift and data-check violations, not yet accepted."""
    return store.get(f"drift:{name}", []) + store.get(f"violations:{name}", [])


def _table(
    config: Config,
    t,
    rec: dict,
    now: datetime,
    replay_lag: float,
    store: StateStore,
    known: list[dict],
    synced: bool = True,
) -> tuple[dict, str]:
    """Return (the table's entry, a reason sentence) for one configured table."""
    last = parse_iso(rec.get("last_sync"))
    lag = (now - last).total_seconds() + replay_lag if last else None
    future = lag is not None and lag < -CLOCK_SLACK
    if future:  # a sync "in the future": the clock moved back, so the lag is unknown, not fresh
        lag = None
    warn, limit = config.sync.warn_lag, config.sync.max_lag
    drift = announce.mark_expected(table_drift(store, t.name), t.name, known)
    frozen = bool(store.get(f"frozen:{t.name}", False))
    drift_reason = (
        f"{t.name}: {drift[0]['detail'] if drift else 'schema drift'}"
        + (f" (and {len(drift) - 1} more)" if len(drift) > 1 else "")
        + (" - syncing is frozen until the change is accepted." if frozen else ".")
    )
    if rec.get("last_error"):
        state, reason = "outage", f"{t.name}: {rec['last_error']}"
    elif frozen:  # the cause is known: growing lag is shown but does not escalate
        state, reason = "drift", drift_reason
    elif not synced and last is not None:  # no real-time clock: a lag on a wrong clock is wrong
        state, lag = "lagging", None
        reason = (
            "Waiting for the clock to be synchronised (the Pi has no real-time clock): "
            "lag is judged once it is."
        )
    elif future:
        state = "lagging"
        reason = (
            f"{t.name}: its last sync is dated after this clock's now (the clock moved back?); "
            f"its lag is unknown until the next sync."
        )
    elif lag is None:
        state, reason = "lagging", f"{t.name} has not finished its first sync yet."
    elif lag > limit:
        state = "outage"
        reason = (
            f"{t.name} has not synced for {format_duration(lag)} "
            f"(more than max_lag {format_duration(limit)})."
        )
    elif drift:
        state, reason = "drift", drift_reason
    elif lag > warn:
        state = "lagging"
        reason = f"{t.name} is {format_duration(lag)} behind (more than warn_lag {format_duration(warn)})."
    else:
        state, reason = "ok", ""
    entry = {
        "name": t.name,
        "replica_name": t.replica_name,
        "state": state,
        "rows": int(rec.get("rows") or 0),
        "last_sync": rec.get("last_sync"),
        "lag_seconds": round(lag, 3) if lag is not None else None,
        "drift": drift,
        "frozen": frozen,
        "error": rec.get("last_error") or None,
        "note": rec.get("note") or None,
    }
    return entry, reason


def _threshold_since(entries: list[dict], state: str, config: Config) -> datetime | None:
    """Return when lag crossed the threshold of ``state`` (for a state reached by ageing)."""
    limit = {"lagging": config.sync.warn_lag, "outage": config.sync.max_lag}.get(state)
    if not limit:
        return None
    times = [
        synced + timedelta(seconds=limit)
        for e in entries
        if e["state"] == state and (synced := parse_iso(e["last_sync"])) is not None
    ]
    return min(times) if times else None


def build(
    config: Config, store: StateStore, now: datetime | None = None, clock_synced: bool | None = None
) -> dict:
    """Return the status document (BRIEF section 3) from the state store.

    ``clock_synced`` is whether the system clock is synchronised (``clock.synchronised()``
    when not given; unknown counts as synchronised).
    """
    now = now or utcnow()
    synced = synchronised() if clock_synced is None else clock_synced
    synced = True if synced is None else synced
    source = store.get("source", {})
    records = store.tables()
    replay_lag = float(source.get("replay_lag") or 0.0)
    known = announce.announcements(config, store)
    entries: list[dict] = []
    reasons: dict[str, str] = {}  # state -> the first table's reason for it
    for t in config.tables:
        entry, reason = _table(config, t, records.get(t.name, {}), now, replay_lag, store, known, synced)
        entries.append(entry)
        reasons.setdefault(entry["state"], reason)
    window = maintenance.active(config, store, now)
    planned = (
        f"Planned maintenance until {local_time(window.end, now, seconds=False)}: {window.reason}"
        if window
        else ""
    )
    for e in entries:  # a table that is down inside its window is expected to be
        if window and e["state"] == "outage" and window.covers(e["name"]):
            e["state"] = "maintenance"
            reasons.setdefault("maintenance", f"{planned} ({e['name']}: {e['error'] or 'not syncing'}).")
    source_drift = announce.mark_expected(store.get("source_drift", []), "source", known)
    if source_drift:
        reasons.setdefault("drift", f"{source_drift[0]['detail']}.")
    state = worst([*(e["state"] for e in entries), *(["drift"] if source_drift else [])])
    reason = reasons.get(state, "")
    tunnel = source.get("tunnel", "direct" if config.ssh is None else "down")
    if source.get("down"):
        cause = f"{SOURCE_DOWN.get(source.get('kind'), 'Source down')}: {source.get('last_error', '')}"
        if window and not window.tables:  # the whole source is down, as planned
            state, reason = "maintenance", f"{planned} ({cause})"
        else:
            state, reason = "outage", cause
        for e in entries:  # no table syncs while its source is down: the cards say so too
            e["state"] = worst([e["state"], state])
    if state == "ok":
        # "The table is up to date." for one: "All 1 tables" reads like a bug on the OLED
        reason = (
            "The table is up to date." if len(entries) == 1 else f"All {len(entries)} tables are up to date."
        )
    stored = store.get("health", {})
    if stored.get("state") == state:
        since = stored.get("since")
    elif source.get("down"):  # the source's loss began now, not when some lag would have aged
        since = iso(now)
    else:
        since = iso(_threshold_since(entries, state, config) or now)
    ack = store.get("ack", {})
    return {
        "state": state,
        "since": since,
        "reason": reason,
        "acknowledged": ack.get("state") == state and ack.get("since") == since,
        "agent": _agent(config, store, now),
        "source": {
            "tunnel": tunnel,
            "database": source.get("database", "down"),
            "last_error": source.get("last_error", ""),
            "drift": source_drift,
            "clock_offset_seconds": source.get("clock_offset"),
            "clock_note": clock_note(source.get("clock_offset")),
        },
        "tables": entries,
        "maintenance": _windows(config, store, now, window),
        "announcements": [a for a in known if a["on"] >= (now.date() - timedelta(days=7)).isoformat()],
    }


def clock_note(offset: float | None) -> str:
    """Return what to say when the source's clock and ours differ by more than a minute.

    Lag does not depend on it (it compares the Pi's own timestamps, plus the standby's
    replay lag on the source's clock), but a wrong clock misdates the page, the events and
    the notifications, and on the Pi it usually means the time was never synchronised.
    """
    if offset is None or abs(offset) <= CLOCK_SLACK:
        return ""
    side = "behind" if offset > 0 else "ahead of"
    return (
        f"This appliance's clock is {format_duration(abs(offset))} {side} the source's: check "
        f"time synchronisation on both (timedatectl on the Pi)."
    )


def _windows(config: Config, store: StateStore, now: datetime, window: maintenance.Window | None) -> dict:
    """Return the current and the next maintenance window for the status document."""
    following = maintenance.upcoming(config, store, now)
    return {
        "active": window.as_dict() if window else None,
        "next": following.as_dict() if following else None,
    }


def update(config: Config, store: StateStore, now: str | None = None) -> dict:
    """Recompute the status; on a state change record it, its event and its notifications."""
    from . import notify

    status = build(config, store, parse_iso(now) if now else None)
    if _accept(config, store, _announced_and_harmless(status), "announcement"):
        status = build(config, store, parse_iso(now) if now else None)
    stored = store.get("health", {})
    if stored.get("state") != status["state"]:
        store.put("health", {"state": status["state"], "since": status["since"], "reason": status["reason"]})
        was = stored.get("state", "start")
        store.event("state", f"{was} -> {status['state']}: {status['reason']}", at=status["since"])
        if (was != "start" or status["state"] != "ok") and not _quiet_drift(config, status):
            notify.enqueue(config, store, status, was)
    return status


def _quiet_drift(config: Config, status: dict) -> bool:
    """True when the new state is drift that wakes nobody: tables whose policy is ignore, or
    changes that were announced."""
    if status["state"] != "drift":
        return False
    policies = {t.name: t.on_drift for t in config.tables}
    drifting = [t for t in status["tables"] if t["state"] == "drift"]
    source = status["source"]["drift"]
    return (
        bool(drifting or source)
        and all(d.get("expected") for d in source)
        and all(
            policies[t["name"]] == "ignore" or all(d.get("expected") for d in t["drift"]) for t in drifting
        )
    )


def _announced_and_harmless(status: dict) -> list[str]:
    """Return the tables whose drift was all announced with auto_accept and breaks nothing."""
    known = {(a["table"], a["change"]): a for a in status.get("announcements", [])}
    out = []
    for t in status["tables"]:
        drift = t["drift"]
        if drift and all(
            d.get("expected")
            and not d["breaking"]
            and known.get((t["name"], d["announcement"]), {}).get("auto_accept")
            for d in drift
        ):
            out.append(t["name"])
    return out


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
        store.put("ack", {"state": status["state"], "since": status["since"], "at": iso(utcnow()), "by": by})
        store.event("ack", f"{status['state']} acknowledged by {by}")
        return True


def accept_drift(config: Config, table: str | None = None, by: str = "cli") -> bool:
    """Accept the drift of one table (or of everything): the live schema becomes the contract.

    Returns False when there was nothing to accept. The agent applies the new contract on
    its next pass (a breaking change is then copied again).
    """
    tables = [config.table(table).name] if table else [t.name for t in config.tables]
    with StateStore(config.state_dir) as store:
        accepted = _accept(config, store, tables, by)
        if table is None and store.get("source_drift"):
            store.put(
                "known_tables",
                sorted(set(store.get("known_tables", [])) | {d["value"] for d in store.get("source_drift")}),
            )
            store.put("source_drift", [])
            store.event("accept", f"new tables accepted by {by}")
            accepted.append("source")
        if accepted:
            update(config, store)
    return bool(accepted)


def _accept(config: Config, store: StateStore, names: list[str], by: str) -> list[str]:
    """Make the live schema the contract of each table that has drift; return those accepted."""
    from ..schema import contract as contract_mod

    accepted = []
    for name in names:
        live = store.get(f"live:{name}")
        drift = table_drift(store, name)
        if not drift or live is None:
            continue
        for v in store.get(f"violations:{name}", []):  # accepted JSON keys join the contract
            if v["kind"] == "json_keys_changed":
                live["json_keys"][v["column"]] = sorted(
                    set(live["json_keys"].get(v["column"], [])) | set(v["value"].split(","))
                )
        contract_mod.save(config.state_dir, name, live)
        for key in (f"drift:{name}", f"violations:{name}"):
            store.put(key, [])
        store.put(f"frozen:{name}", False)
        accepted.append(name)
        store.event("accept", f"{name}: drift accepted by {by} ({len(drift)} change(s))", table=name)
    return accepted
