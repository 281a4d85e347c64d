"""The agent's parts in one process for tests: the real tunnel, source, replica and store."""

from __future__ import annotations

import sqlite3

from appliance.config import load
from appliance.health.store import StateStore
from appliance.sync.agent import Agent, run_once
from appliance.sync.link import SourceLink
from appliance.sync.reconcile import FACTOR, FIRST, plan_for, reconcile_table
from appliance.sync.replica import Replica


class Harness:
    """One config's agent parts, opened once; the tunnel stays up between calls."""

    def __init__(self, cfg_path) -> None:
        self.config = load(cfg_path)
        self.store = StateStore(self.config.state_dir)
        self.replica = Replica(self.config.replica_url)
        self.link = SourceLink(self.config)

    def __enter__(self) -> Harness:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.link.close()
        self.replica.close()
        self.store.close()

    def sync(self):
        """Run one pass (no reconciliation) and fail the test if it did not succeed."""
        result = run_once(self.config, self.link, self.replica, self.store)
        assert result.ok, result.summary() + " " + str([t.error for t in result.tables])
        return result

    def agent_pass(self, reconcile: bool = False):
        """Run one pass the way the agent does, reconciliation schedule included."""
        agent = Agent(self.config, self.link, self.replica, self.store)
        result, _ = agent._pass(reconcile)
        return result

    def reconcile(
        self,
        name: str | None = None,
        factor: int = FACTOR,
        threshold: int | None = None,
        first: int = FIRST,
        kind: str = "rows",
    ):
        """Reconcile one table (the first configured by default) now, comparing whole rows
        (or, with ``kind="keys"``, which keys exist)."""
        table = self.config.table(name) if name else self.config.tables[0]
        source = self.link.source()
        shape = source.describe([table.name])[table.name]
        plan = plan_for(self.config, table, shape, source, self.replica)
        return reconcile_table(
            source,
            self.replica,
            plan,
            self.config.sync,
            factor=factor,
            threshold=threshold,
            first=first,
            kind=kind,
        )

    def rows(self, table: str, order: str = "1", where: str = "") -> list[dict]:
        """Return the replica's rows of a table as dicts (bookkeeping columns included)."""
        db = sqlite3.connect(self.replica.path)
        try:
            sql = f'SELECT * FROM "{table}"' + (f" WHERE {where}" if where else "")
            cur = db.execute(f"{sql} ORDER BY {order}")
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r, strict=True)) for r in cur]
        finally:
            db.close()
