"""Put the state store into each state the page must show, as the agent would record it."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from appliance.clock import iso, utcnow
from appliance.config import Config
from appliance.health import status as health
from appliance.health.store import StateStore
from appliance.schema import contract
from appliance.schema.drift import compare
from appliance.schema.shape import Column, Shape
from appliance.web import views

HOSTILE_TABLE = 'public.<script>alert("t")</script>\'q'
HOSTILE = "<script>alert('x')</script>\"q'"
HOSTILE_VALUE = "<img src=x onerror=alert(1)>\"'"

# (table ages in seconds, source down?) per state the store itself can produce.
AGES = {
    "ok": ({"public.orders": 5, "public.items": 20}, False),
    "lagging": ({"public.orders": 5, "public.items": 900}, False),
    "drift": ({"public.orders": 5, "public.items": 20}, False),
    "outage": ({"public.orders": 5, "public.items": 20}, True),
}
# What the drift checks record for a new column (appliance/drift.py's Drift.as_dict()).
ADDED = {
    "kind": "column_added",
    "column": "discount_code",
    "breaking": False,
    "detail": 'column "discount_code" (text) was added',
    "value": "",
}
WORDS = views.WORDS  # the banner's words, as the page says them


def fill(
    config: Config,
    state: str,
    *,
    agent_ago: float = 2,
    now: datetime | None = None,
    drift: list[dict] | None = None,
) -> None:
    """Record synced tables, the source, the agent and a pass so that health says ``state``."""
    now = now or utcnow()
    ages, down = AGES[state]
    with StateStore(config.state_dir) as store:
        store.put("drift:public.orders", (drift or [ADDED]) if state == "drift" else [])
        for t in config.tables:
            ago = ages.get(t.name, 5)
            store.record_table(
                t.name, t.replica_name, last_sync=iso(now - timedelta(seconds=ago)), rows=1200, synced=1500
            )
        store.put(
            "source",
            {
                "tunnel": "down" if down else "up",
                "database": "down" if down else "up",
                "down": down,
                "kind": "tunnel" if down else "",
                "last_error": "cannot reach bastion.example:22: Connection refused." if down else "",
            },
        )
        store.put(
            "agent",
            {
                "running": True,
                "heartbeat": iso(now - timedelta(seconds=agent_ago)),
                "interval": 30,
                "pid": 4242,
            },
        )
        store.run(
            iso(now - timedelta(seconds=3)),
            iso(now - timedelta(seconds=2)),
            not down,
            0,
            "pass failed: tunnel down"
            if down
            else "pass ok: 2 tables, 0 rows changed, 4 statements (public.orders +0/-0, public.items +0/-0)",
        )
        health.update(config, store)


def _orders(name: str, *extra: Column) -> Shape:
    columns = [Column("id", "bigint", "integer", nullable=False), Column("total", "numeric(12,2)", "numeric")]
    return Shape(name, [*columns, *extra], ["id"])


def drift_at_source(config: Config, table: str = "public.orders") -> dict:
    """Record what the schema guard records when ``discount_code`` appears at the source.

    The accepted contract file, the live snapshot in the store and the drift between them
    (appliance/schema/drift.py's ``compare``): what ``health.accept_drift`` reads.
    Return the live snapshot, which accepting makes the contract.
    """
    accepted = contract.snapshot(_orders(table))
    live = contract.snapshot(_orders(table, Column("discount_code", "text", "text")))
    contract.save(config.state_dir, table, accepted)
    with StateStore(config.state_dir) as store:
        store.put(f"live:{table}", live)
        store.put(f"drift:{table}", [d.as_dict() for d in compare(accepted, live)])
        health.update(config, store)
    return live


def force(monkeypatch: pytest.MonkeyPatch, state: str = "maintenance") -> None:
    """Make health report ``state`` (maintenance windows have no producer in the store yet)."""
    real = health.current_status

    def current_status(config, now=None):
        doc = real(config, now)
        doc["state"] = state
        doc["reason"] = "Planned maintenance of the source until 16:00."
        doc["tables"][0]["state"] = state
        return doc

    monkeypatch.setattr(health, "current_status", current_status)
