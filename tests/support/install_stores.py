"""State stores as earlier releases left them: their schema, from git history, and data.

Every schema the state store has had (``git log -p -- appliance/health/store.py
appliance/state.py``): the tables never changed shape, the outbox came in second, and no
version was recorded before migrations (user_version 0). The data is written with the SQL
and the value shapes those releases used.

- version 1, b1a63c2 (appliance/state.py): meta, tables, events, runs
- version 2, c809bab to 8ad1979 (appliance/state.py, then appliance/health/store.py):
  the same and the notification outbox
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

V1_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS tables (
        name TEXT PRIMARY KEY, replica_name TEXT, last_sync TEXT, rows INTEGER DEFAULT 0,
        rows_synced_total INTEGER DEFAULT 0, last_error TEXT, error_since TEXT, note TEXT)""",
    """CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, table_name TEXT,
        message TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY, started TEXT NOT NULL, finished TEXT NOT NULL, ok INTEGER,
        rows INTEGER, summary TEXT)""",
]
V2_SCHEMA = [
    *V1_SCHEMA[:3],
    """CREATE TABLE IF NOT EXISTS outbox (
        id INTEGER PRIMARY KEY, created TEXT NOT NULL, channel TEXT NOT NULL,
        payload TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL,
        sent TEXT, last_error TEXT)""",
    V1_SCHEMA[3],
]
SCHEMAS = {1: V1_SCHEMA, 2: V2_SCHEMA}
SYNCED_AT = "2026-11-23T15:00:00.000000Z"
EVENTS = [
    ("2026-11-23T14:59:00.000000Z", "agent", None, "agent started (pid 4242)"),
    ("2026-11-23T15:00:00.000000Z", "state", None, "start -> ok: "),
    ("2026-11-23T15:05:00.000000Z", "ack", None, "outage acknowledged by button"),
]


def old_store(state_dir: Path, version: int, synced_at: str = SYNCED_AT) -> Path:
    """Write ``state.sqlite`` as release ``version`` left it, with its data; return its path.

    ``synced_at`` is when the table last synced (a recent time: the appliance is healthy).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "state.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    for sql in SCHEMAS[version]:
        db.execute(sql)
    put = "INSERT OR REPLACE INTO meta VALUES (?, ?)"
    db.execute(put, ("agent", json.dumps({"started": SYNCED_AT, "pid": 4242, "running": False})))
    db.execute(put, ("health", json.dumps({"state": "ok", "since": SYNCED_AT, "reason": ""})))
    db.execute(put, ("ack", json.dumps({"state": "outage", "since": "2026-11-23T14:00:00Z"})))
    db.execute(
        put,
        ("source", json.dumps({"tunnel": "up", "database": "up", "last_error": "", "down": False})),
    )
    db.execute(
        "INSERT INTO tables (name, replica_name, last_sync, rows, rows_synced_total) VALUES (?,?,?,?,?)",
        ("public.orders", "orders", synced_at, 1200, 1250),
    )
    db.executemany("INSERT INTO events (at, kind, table_name, message) VALUES (?,?,?,?)", EVENTS)
    db.execute(
        "INSERT INTO runs (started, finished, ok, rows, summary) VALUES (?,?,?,?,?)",
        ("2026-11-23T14:59:58Z", SYNCED_AT, 1, 1200, "pass ok: 1 tables, 1200 rows"),
    )
    if version >= 2:
        db.execute(
            "INSERT INTO outbox (created, channel, payload, next_try) VALUES (?,?,?,?)",
            (SYNCED_AT, "webhook", json.dumps({"text": "OUTAGE: tunnel down"}), 0.0),
        )
    db.close()  # the last connection: SQLite checkpoints and removes the -wal
    return path
