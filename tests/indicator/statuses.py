"""Status documents (BRIEF section 3) and small helpers shared by the indicator tests."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from appliance.config import Config, parse

NOW = datetime(2025, 11, 23, 14, 30, tzinfo=UTC)
ADDRESS = "192.168.1.23:8080"
RED, AMBER, GREEN, BUTTON = 17, 27, 22, 26  # the defaults of [indicator]


def table(
    name: str = "public.orders",
    state: str = "ok",
    lag: float | None = 30.0,
    last_sync: str | None = "2025-11-23T14:29:30Z",
    **changes: Any,
) -> dict[str, Any]:
    """Return one table entry of the status document."""
    entry = {
        "name": name,
        "state": state,
        "rows": 1200,
        "last_sync": last_sync,
        "lag_seconds": lag,
        "frozen": False,
        "drift": [],
    }
    entry.update(changes)
    return entry


def status(
    state: str = "ok",
    reason: str = "All 3 tables are fresh.",
    *,
    tables: list[dict[str, Any]] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    """Return a status document; ``changes`` replace top-level keys."""
    doc = {
        "state": state,
        "since": "2025-11-23T14:02:00Z",
        "reason": reason,
        "acknowledged": False,
        "agent": {"running": True, "last_heartbeat": "2025-11-23T14:29:55Z"},
        "source": {"tunnel": "up", "database": "up", "last_error": ""},
        "tables": tables
        if tables is not None
        else [
            table("public.customers", lag=25.0),
            table("public.orders", lag=30.0),
            table("public.products", lag=40.0, last_sync="2025-11-23T14:29:20Z"),
        ],
    }
    doc.update(copy.deepcopy(changes))
    return doc


def lagging() -> dict[str, Any]:
    return status(
        "lagging",
        "orders is 14m behind (warn_lag is 10m).",
        tables=[
            table("public.customers", lag=25.0),
            table("public.orders", "lagging", lag=840.0, last_sync="2025-11-23T14:16:00Z"),
        ],
    )


def drift() -> dict[str, Any]:
    change = {"kind": "column_added", "column": "discount_code", "breaking": False, "detail": "text"}
    return status(
        "drift",
        "orders: new column discount_code, not yet accepted.",
        tables=[
            table("public.customers", lag=25.0),
            table("public.orders", "drift", lag=30.0, drift=[change]),
        ],
    )


def frozen() -> dict[str, Any]:
    change = {"kind": "type_changed", "column": "total", "breaking": True, "detail": "numeric -> text"}
    return status(
        "drift",
        "orders frozen: column total changed from numeric to text.",
        tables=[
            table("public.customers", lag=25.0),
            table(
                "public.orders",
                "drift",
                lag=3 * 3600.0 + 300,
                last_sync="2025-11-23T11:25:00Z",
                frozen=True,
                drift=[change],
            ),
        ],
    )


def maintenance() -> dict[str, Any]:
    doc = status(
        "maintenance",
        "Planned maintenance until 16:00 UTC: PostgreSQL upgrade (Database unreachable: refused).",
        since="2025-11-22T22:00:00Z",
        tables=[table("public.orders", "maintenance", lag=1800.0, last_sync="2025-11-23T14:00:00Z")],
    )
    window = {"start": "2025-11-23T13:00:00Z", "end": "2025-11-23T16:00:00Z", "reason": "PostgreSQL upgrade"}
    return {**doc, "maintenance": {"active": window, "next": None}}


def outage(acknowledged: bool = False) -> dict[str, Any]:
    return status(
        "outage",
        "Tunnel down: bastion.example.com:22 refused the connection.",
        acknowledged=acknowledged,
        source={"tunnel": "down", "database": "down", "last_error": "refused"},
        tables=[table("public.orders", "outage", lag=4200.0, last_sync="2025-11-23T13:20:00Z")],
    )


def agent_down() -> dict[str, Any]:
    return status(
        "lagging",
        "orders is 20m behind (warn_lag is 10m).",
        agent={"running": False, "last_heartbeat": "2025-11-23T14:09:00Z"},
        tables=[table("public.orders", "lagging", lag=1260.0, last_sync="2025-11-23T14:09:00Z")],
    )


def long_names() -> dict[str, Any]:
    return status(
        "lagging",
        "The source answered slowly for a long while, so some tables are behind "
        "their warn_lag and an engineer should look at the status page soon.",
        tables=[
            table(
                "warehouse_reporting.customer_lifetime_value_snapshots_daily",
                "lagging",
                lag=2 * 86400.0 + 7200,
                last_sync="2025-11-21T12:30:00Z",
            )
        ],
    )


# What the health module really says when PostgreSQL refuses: the category, the category
# again (from the sync's own message), the driver's chain, its hint and our advice.
DATABASE_REFUSED = (
    "Database unreachable: database unreachable at 127.0.0.1:5432: connection to server at "
    '"127.0.0.1", port 5432 failed: Connection refused\n\tIs the server running on that host '
    "and accepting TCP/IP connections?. Check source.host/source.port and that the database is up."
)


def database_down() -> dict[str, Any]:
    return status(
        "outage",
        DATABASE_REFUSED,
        since="2025-11-22T23:40:00Z",
        source={"tunnel": "up", "database": "down", "last_error": DATABASE_REFUSED},
        tables=[table("public.orders", "outage", lag=53400.0, last_sync="2025-11-22T23:40:00Z")],
    )


def fresh_install() -> dict[str, Any]:
    """A Pi just set up: the agent never ran, no table was ever copied."""
    return status(
        "lagging",
        "public.orders has not finished its first sync yet.",
        since="2025-11-23T14:25:00Z",
        agent={"running": False, "last_heartbeat": None},
        tables=[table("public.orders", "lagging", lag=None, last_sync=None)],
    )


def starting() -> dict[str, Any]:
    """The agent runs its first pass: nothing copied yet, nothing late either."""
    return {**fresh_install(), "agent": {"running": True, "last_heartbeat": "2025-11-23T14:29:55Z"}}


# Every state's frame, named for its golden picture (tests/indicator/golden/NAME.png).
STATES: dict[str, Callable[[], dict[str, Any]]] = {
    "ok": status,
    "lagging": lagging,
    "drift": drift,
    "frozen": frozen,
    "maintenance": maintenance,
    "outage": outage,
    "outage_ack": lambda: outage(acknowledged=True),
    "agent_down": agent_down,
    "long_names": long_names,
    "database_down": database_down,
    "fresh_install": fresh_install,
    "starting": starting,
}


def config(
    environ: dict[str, str] | None = None, state_dir: str = "/tmp/appliance", **indicator: Any
) -> Config:
    """Return a Config with a minimal source, one table and these ``[indicator]`` keys."""
    data = {
        "appliance": {"state_dir": state_dir},
        "source": {"host": "db.internal", "database": "sales", "user": "ro"},
        "tables": [{"name": "public.orders", "cursor": "updated_at"}],
        "web": {"host": "127.0.0.1", "port": 8080},
        "indicator": indicator,
    }
    return parse(data, "test.toml", environ=environ or {})


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (never a timing assert)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)


def history(factory: Any, pin: int) -> list[bool]:
    """Return every state a mock pin went through, the initial one first."""
    return [s.state for s in factory.pin(pin).states]
