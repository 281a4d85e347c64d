"""The schema guard: each pass, before copying, compare every table with its contract.

It writes the contract on a table's first sync, records drift in the state store, and
applies the table's policy (BRIEF 4.5, 9):
- ``evolve``: non-breaking changes are applied to the replica (new columns added and
  backfilled) and syncing goes on; a breaking change freezes the table;
- ``freeze``: any change freezes the table (the last good data stays untouched);
- ``ignore``: keeps syncing the columns that still fit (the contract's columns, still there
  and stored the same way in the replica), sends no notification.
In every case the table's state is ``drift`` until the change is accepted
(``health.accept_drift``). After accepting a breaking change the table is copied again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ..config import Config, TableSettings
from ..errors import ApplianceError, QueryError, SourceSchemaError
from ..health.store import StateStore
from ..schema import contract as contract_mod
from ..schema.datachecks import check_rows, json_keys
from ..schema.drift import Drift, compare, new_tables
from ..schema.shape import Shape
from .replica import Replica
from .source import Source

log = logging.getLogger(__name__)

# Breaking changes no policy can sync through.
_UNSYNCABLE = {"table_dropped", "primary_key_changed", "cursor_changed"}


@dataclass
class Verdict:
    """What the guard decided for one table this pass."""

    entries: list[Drift] = field(default_factory=list)
    frozen: bool = False
    columns: set[str] | None = None  # the columns to sync; None: every live column
    allowed: dict[str, set[str]] = field(default_factory=dict)
    contract: dict | None = None
    error: str = ""  # the source failed this table's checks: the table's error this pass


def _still_fitting(accepted: dict, live: dict) -> set[str]:
    """Return the contract's columns the replica can still take: present, of the same kind.

    A column retyped to another kind (smallint -> text) would put text into an INTEGER
    column; under ``ignore`` it keeps its last good values until the change is accepted.
    """
    kinds = {c["name"]: c["kind"] for c in live["columns"]}
    return {c["name"] for c in accepted["columns"] if kinds.get(c["name"]) == c["kind"]}


def _entries_text(entries: list[Drift]) -> str:
    return "; ".join(d.detail for d in entries)


class Guard:
    """Contract, drift and data checks for one pass."""

    def __init__(self, config: Config, store: StateStore, source: Source, replica: Replica) -> None:
        self.config, self.store, self.source, self.replica = config, store, source, replica

    def check(self, shapes: dict[str, Shape], schema_tables: list[str]) -> dict[str, Verdict]:
        """Return a verdict per configured table and record the source-level drift."""
        verdicts = {t.name: self._checked(t, shapes.get(t.name)) for t in self.config.tables}
        self._new_tables(schema_tables)
        return verdicts

    def _checked(self, t: TableSettings, shape: Shape | None) -> Verdict:
        """Return the table's verdict; a query of its own that fails (a view that raises, a
        timeout, a lock) is its error, never the pass's: the other tables go on."""
        try:
            return self._table(t, shape)
        except (QueryError, SourceSchemaError) as e:
            log.warning("%s: the schema check failed: %s", t.name, e)
            return Verdict(frozen=True, error=str(e))

    def _new_tables(self, live: list[str]) -> None:
        known = self.store.get("known_tables")
        if known is None:  # first pass: what exists now is the baseline
            self.store.put("known_tables", live)
            return
        entries = new_tables(known, live, [t.name for t in self.config.tables])
        self._record("source", entries, key="source_drift")

    def _table(self, t: TableSettings, shape: Shape | None) -> Verdict:
        accepted = contract_mod.load(self.config.state_dir, t.name)
        if accepted is None:
            if shape is None:
                return Verdict()  # never seen: the sync reports the missing table
            accepted = contract_mod.snapshot(shape, t.cursor, self._json_keys(t, shape))
            contract_mod.save(self.config.state_dir, t.name, accepted)
            self.store.event("contract", f"contract written for {t.name}", table=t.name)
        live = contract_mod.snapshot(shape, t.cursor) if shape else None
        entries = compare(accepted, live, t.cursor)
        if live is not None:
            live["json_keys"] = accepted.get("json_keys", {})
        self.store.put(f"live:{t.name}", live)
        self._record(t.name, entries)
        verdict = Verdict(entries, contract=accepted, allowed=self._allowed(t))
        breaking = any(d.breaking for d in entries)
        verdict.frozen = bool(entries) and (
            t.on_drift == "freeze"
            or (t.on_drift == "evolve" and breaking)
            or any(d.kind in _UNSYNCABLE for d in entries)
        )
        if t.on_drift == "ignore" and live is not None:
            verdict.columns = _still_fitting(accepted, live)
        self.store.put(f"frozen:{t.name}", verdict.frozen)
        if not entries and live is not None:
            self._recopy_if_reshaped(t, live)
        return verdict

    def _record(self, name: str, entries: list[Drift], key: str | None = None) -> None:
        """Store the drift list; log an event when it changes."""
        key = key or f"drift:{name}"
        new = [d.as_dict() for d in entries]
        if self.store.get(key, []) != new:
            self.store.put(key, new)
            if new:
                self.store.event(
                    "drift", f"{name}: {_entries_text(entries)}", table=None if name == "source" else name
                )

    def _json_keys(self, t: TableSettings, shape: Shape) -> dict[str, list[str]]:
        out = {}
        for col in shape.columns:
            if col.kind == "json" and col.name not in t.exclude_columns:
                keys: set[str] = set()
                try:
                    sample = self.source.sample(t, col)
                except QueryError as e:  # one bad row or a slow sample: this column's keys unknown
                    log.warning("%s: sampling %s for its JSON keys failed: %s", t.name, col.name, e)
                    continue  # not an empty list: every key would then look new
                for value in sample:
                    keys |= json_keys(value)
                out[col.name] = sorted(keys)
        return out

    def _allowed(self, t: TableSettings) -> dict[str, set[str]]:
        allowed = {c: set(vals) for c, vals in t.allowed_values.items()}
        for col, ref in t.lookup.items():
            try:
                allowed[col] = allowed.get(col, set()) | self.source.distinct_values(ref)
            except ApplianceError as e:
                log.warning("%s: lookup %s for %s failed: %s", t.name, ref, col, e)
        return allowed

    def _recopy_if_reshaped(self, t: TableSettings, live: dict) -> None:
        """After an accepted breaking change the replica no longer fits: copy the table again."""
        st = self.replica.state(t.replica_name)
        if st is None:
            return
        live_cols = {c["name"]: c["kind"] for c in live["columns"] if c["name"] not in t.exclude_columns}
        gone_or_retyped = [
            c for c in st.columns if live_cols.get(c[0], c[2]) != c[2] or c[0] not in live_cols
        ]
        key = t.primary_key or live["primary_key"]
        if gone_or_retyped or st.key != list(key):
            with self.replica.transaction() as db:
                self.replica.drop_table(t.replica_name)
                db.execute("DELETE FROM _appliance_tables WHERE replica_name = ?", (t.replica_name,))
            self.store.event(
                "drift", f"{t.name}: copying the table again after an accepted breaking change", table=t.name
            )

    def violations(self, t: TableSettings, verdict: Verdict, names: list[str], key: list[str], rows) -> None:
        """Run the data checks on rows about to be written; record new violations."""
        if verdict.contract is None or not rows:
            return
        found = check_rows(rows, names, key, verdict.contract, verdict.allowed)
        if not found:
            return
        stored = self.store.get(f"violations:{t.name}", [])
        seen = {(v["kind"], v["column"]) for v in stored}
        fresh = [d for d in found if (d.kind, d.column) not in seen]
        if fresh:
            self.store.put(f"violations:{t.name}", stored + [d.as_dict() for d in fresh])
            self.store.event("drift", f"{t.name}: {_entries_text(fresh)}", table=t.name)
