"""Hard-delete reconciliation by checksum bisection (the data-diff / reladiff algorithm).

Cursor sync never sees a row deleted at the source, nor a row changed without its cursor
moving. So each table with a cursor is compared with the source: cut the key space into
ranges, ask both sides for each range's row count and checksum (an order-independent
sum of row hashes, see ``checksum``), and look closer only where they differ, cutting
those ranges again in up to ``FACTOR``. A range of at most ``THRESHOLD`` rows is settled
by downloading its keys with their row hashes: rows gone at the source are removed (or
tombstoned), rows missing or different in the replica are re-read by key through the
sync's own write path. The first cut is wider (up to ``FIRST`` ranges, from what the
replica holds), so the source hashes the table once; each later level asks about all its
ranges in one statement per side, so round trips grow with the depth, and what crosses
the wire with the number of differences, not with the size of the table.

Two kinds of comparison (``KINDS``). "rows" compares whole rows as above: it finds rows
changed without their cursor too, and the source hashes every row (seconds per million).
"keys" compares only which keys exist: for a single integer key, a range's checksum is
the sum of its keys' digests, which both sides compute from the key alone (an index-only
scan at the source), with the sum of its keys' offsets; a range holding one key fewer at
the source names that key (``segments.missing_key``), others are settled by their keys,
without hashes: a few deletes in a million rows take one statement, a quarter of a
second over a slow link.
Every ``reconcile_every`` (and on ``appliance sync --reconcile``) a table is reconciled:
by rows when ``verify_every`` has passed since its last comparison of rows (and always
on ``--reconcile``), by keys otherwise. A table whose key is not a single integer is
always compared by rows.

The source side counts only the rows the replica should hold (``where`` and soft-delete
"drop" applied); the replica side ignores tombstoned rows. Every source query is a short
read-only statement in the session that ``statement_timeout`` bounds.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import timedelta

from ..clock import iso, parse_iso, utcnow
from ..errors import ApplianceError, SourceError, TunnelError
from ..health.store import StateStore
from . import checksum, extras, rowhash
from .masking import mask_key, masker
from .segments import Cut, Key, KeyRange, ReplicaSide, Side, SourceSide, integer_cut, missing_key
from .source import Source, _generic_value
from .table import Plan, TableResult, TableSync, make_plan
from .typemap import quote_ident

log = logging.getLogger(__name__)

FIRST = 1024  # ranges of the first cut: the whole table is hashed once at the source
FACTOR = 32  # ranges per split below the first
THRESHOLD = 64  # at most this many rows on either side: download keys and hashes instead
BATCH = 256  # ranges per statement
STATEMENT_ROWS = 1_000_000  # rows per statement, about: ~4 s here, far below statement_timeout
MAX_DEPTH = 24  # a safety net; keys are unique, so splitting always makes progress
# By keys, a range's keys cost a few bytes each and one more level a round trip: settle
# ranges of up to KEY_THRESHOLD rows at once while their keys total at most KEY_BUDGET
# (a few hundred kB), else cut them once more.
KEY_THRESHOLD, KEY_BUDGET = 4096, 50_000
KINDS = ("rows", "keys")


@dataclass
class ReconcileResult:
    """What one table's reconciliation found and what it cost."""

    name: str
    replica_name: str
    kind: str = "rows"  # what was compared: whole rows, or which keys exist (KINDS)
    source_rows: int = 0
    replica_rows: int = 0
    removed: int = 0  # gone at the source: deleted or tombstoned here
    refetched: int = 0  # missing or different here: read again by key
    hashed: int = 0  # replica rows whose hash had to be computed (new or changed)
    queries: int = 0  # statements run at the source
    transferred: int = 0  # result rows from the source: checksums, split points, keys
    keys: int = 0  # of which (key, hash) pairs of settled ranges
    seconds: float = 0.0
    at: str = ""
    error: str | None = None

    def summary(self) -> str:
        found = (
            f"{self.removed} gone at the source removed, {self.refetched} re-read"
            if self.removed or self.refetched
            else "no difference"
        )
        statements = f"{self.queries} statement" + ("" if self.queries == 1 else "s")
        return (
            f"{self.name}: reconciled by {self.kind}, {self.source_rows} source rows with "
            f"{self.replica_rows} replica rows: {found}; {statements}, "
            f"{self.transferred} rows transferred ({self.keys} keys), "
            f"{self.hashed} rows hashed here, {self.seconds:.2f}s"
        )


def source_conditions(plan: Plan, pg: bool) -> list[str]:
    """Return the conditions selecting, at the source, the rows the replica should hold."""
    conds = []
    if plan.table.where:
        conds.append(f"({plan.table.where.replace('%', '%%') if pg else plan.table.where})")
    if "_deleted" in plan.flags:
        conds.append(f"NOT ({plan.flags['_deleted']})")
    return conds


@dataclass
class Node:
    """A key range whose row count or checksum differs between the two sides."""

    rng: KeyRange
    src_n: int
    rep_n: int


class Stopped(ApplianceError):
    """The reconciliation stopped because the agent is stopping; the next one resumes."""


def _chunks(items: list, n: int = BATCH):
    return [items[i : i + n] for i in range(0, len(items), n)]


def _statements(cuts: list[Cut]) -> list[list[Cut]]:
    """Group consecutive cuts so that each statement covers at most BATCH ranges and about
    STATEMENT_ROWS rows."""
    out: list[list[Cut]] = []
    rows = 0
    for cut in cuts:
        if not out or len(out[-1]) >= BATCH or rows + cut.rows > STATEMENT_ROWS:
            out.append([])
            rows = 0
        out[-1].append(cut)
        rows += cut.rows
    return out


def _parts(rows: int, threshold: int, cap: int) -> int:
    """Return how many ranges to cut ``rows`` rows into: about ``threshold`` each, at most cap."""
    return max(2, min(cap, -(-rows // threshold)))


class Reconciler:
    """Compare one table with the source, level by level, and repair the replica."""

    def __init__(
        self,
        sync: TableSync,
        factor: int = FACTOR,
        threshold: int | None = None,
        first: int = FIRST,
        kind: str = "rows",
    ) -> None:
        self.sync, self.plan = sync, sync.plan
        source, replica, name = sync.source, sync.replica, sync.name
        self.integer = len(self.plan.key) == 1 and self.plan.key[0].kind == "integer"
        # by keys needs a single integer key (and SQL at the source): else by rows
        self.keys = kind == "keys" and self.integer and source.is_postgres
        if threshold is None:
            threshold = KEY_THRESHOLD if self.keys else THRESHOLD
        self.factor, self.threshold, self.first = max(2, factor), max(1, threshold), max(2, first)
        self.result = ReconcileResult(
            self.plan.table.name, name, "keys" if self.keys else "rows", at=iso(utcnow())
        )
        # Masked columns hold a keyed hash only this appliance can compute: not compared.
        self.compared = [c for c in self.plan.columns if c.name not in self.plan.table.mask_columns]
        utf8 = (
            source.is_postgres
            and not self.keys  # no row is hashed: the encoding does not matter (a round trip)
            and source.execute("SHOW server_encoding")[0][0] == "UTF8"
        )
        self.src = SourceSide(
            source.execute,
            source._ident(self.plan.table),
            self.plan.key,
            source_conditions(self.plan, source.is_postgres),
            self.compared,
            utf8,
        )
        self.rep = ReplicaSide(
            lambda sql, p: replica.db.execute(sql, p).fetchall(),
            quote_ident(name),
            self.plan.key,
            extras.live_conditions(replica, name),
            extras.HASH,
        )
        if self.keys:
            self.src.compare_keys()
            self.rep.compare_keys()

    def run(self) -> ReconcileResult:
        t0 = time.monotonic()
        r = self.result
        if not self.keys:  # by keys, no replica row needs its hash
            r.hashed = rowhash.fill(self.sync.replica, self.sync.name, self.compared, self.sync.tick)
        with ThreadPoolExecutor(1, thread_name_prefix="reconcile") as self.pool:
            if self.sync.source.is_postgres:
                self._bisect()
            else:
                self._generic()
        r.queries, r.transferred = self.src.queries, self.src.rows
        r.seconds = time.monotonic() - t0
        return r

    def _both(self, ask):
        """Ask the source (in a worker thread) and the replica the same question at once."""
        pending = self.pool.submit(ask, self.src)
        mine = ask(self.rep)
        return pending.result(), mine

    # -- the bisection, one level (one statement per side) at a time -------------------------
    def _bisect(self) -> None:
        cuts, depth = self._first_cut(), 0
        while cuts:
            nodes = self._differing(cuts, top=depth == 0)
            self._remove_ranges([n.rng for n in nodes if n.src_n == 0])
            small: list[KeyRange] = []  # settled by their keys and row hashes
            big: list[Node] = []  # cut further
            threshold = self.threshold
            if self.keys and sum(max(n.src_n, n.rep_n) for n in nodes if n.src_n) > KEY_BUDGET:
                threshold = THRESHOLD  # many differences: cut once more, download less
            for n in nodes:
                if n.src_n:
                    if max(n.src_n, n.rep_n) <= threshold or depth >= MAX_DEPTH:
                        small.append(n.rng)
                    else:
                        big.append(n)
            cuts, unsplittable = self._cuts(big, threshold)
            self._settle(small + unsplittable)
            depth += 1
            self.sync.tick()

    def _first_cut(self) -> list[Cut]:
        """Cut the whole key space in up to FIRST ranges, from what the replica holds, in
        slices of about STATEMENT_ROWS rows (one statement each)."""
        if self.keys:  # the replica's bounds, and two open ends: no round trip for bounds
            state = self.sync.replica.state(self.sync.name)  # its row count: enough to cut by
            n = state.rows if state and state.rows else self.sync.replica.count(self.sync.name)
            parts = max(self.factor, min(self.first, n // 512))
            lo, hi = self.rep.bounds()
            if lo is None or hi is None:
                return [Cut(KeyRange())]
            inner = integer_cut(KeyRange((lo,), (hi + 1,)), parts, n)
            return [
                Cut(KeyRange(None, (lo,))),
                *inner.slices(-(-n // STATEMENT_ROWS)),
                Cut(KeyRange((hi + 1,))),
            ]
        n = self.sync.replica.count(self.sync.name)
        parts = max(self.factor, _parts(n, self.threshold, self.first))
        if self.integer:
            bounds = [b for pair in self._both(Side.bounds) for b in pair if b is not None]
            if not bounds:
                return []
            rng = KeyRange((min(bounds),), (max(bounds) + 1,))
            cut = integer_cut(rng, parts, n)
        elif n <= self.threshold:
            cut = Cut(KeyRange(), rows=n)
        else:  # ranked on the replica's keys: local, free
            cut = Cut(KeyRange(), tuple(self.rep.points([KeyRange()], [-(-n // parts)])[0]), rows=n)
        return cut.slices(-(-n // STATEMENT_ROWS))

    def _differing(self, cuts: list[Cut], top: bool) -> list[Node]:
        """Return the ranges whose counts or checksums differ. By keys, a range the replica
        holds exactly one key more of, named by the offsets and confirmed by the digests
        (``missing_key``), is settled at once: no statement for its keys."""
        nodes, gone = [], set()
        ask = Side.range_checksums if self.keys else Side.checksums
        empty = (0, 0, None) if self.keys else (0, 0)  # a bucket one side has no row in
        for batch in _statements(cuts):
            src, rep = self._both(lambda side, b=batch: ask(side, b))
            for cut, s, r in zip(batch, src, rep, strict=True):
                if top:
                    self.result.source_rows += sum(v[0] for v in s.values())
                    self.result.replica_rows += sum(v[0] for v in r.values())
                for i, child in enumerate(cut.children()):
                    a, b = s.get(i, empty), r.get(i, empty)
                    if a == b:  # by keys the offset sums too: one more check, free
                        continue
                    key = self._missing(cut, child, a, b) if self.keys else None
                    if key is not None:
                        gone.add((key,))
                    else:
                        nodes.append(Node(child, a[0], b[0]))
        if gone:
            self._apply(gone, [])
        return nodes

    def _missing(self, cut: Cut, child: KeyRange, source: tuple, replica: tuple) -> int | None:
        """Return the one key gone at the source from a bucket of an integer cut, if the
        figures name one and the replica holds it, else None (see ``missing_key``)."""
        if not cut.step or child.lo is None or child.hi is None:
            return None
        key = missing_key(child.lo[0], child.hi[0], source, replica)
        if key is None or not self.rep.hashes([KeyRange((key,), (key + 1,))]):
            return None
        return key

    def _cuts(self, nodes: list[Node], threshold: int) -> tuple[list[Cut], list[KeyRange]]:
        """Return the cuts of the nodes (in parts of about ``threshold`` rows), and the
        ranges that cannot be cut further."""
        cuts, leaves = [], []
        if self.integer:
            for n in nodes:
                rows = max(n.src_n, n.rep_n)
                rng = n.rng if None not in (n.rng.lo, n.rng.hi) else self._bounded(n.rng)
                cut = integer_cut(rng, _parts(rows, threshold, self.factor), rows) if rng else None
                (cuts.append(cut) if cut and cut.points else leaves.append(n.rng))
            return cuts, leaves
        for side, mine in (
            (self.src, [n for n in nodes if n.src_n >= n.rep_n]),
            (self.rep, [n for n in nodes if n.src_n < n.rep_n]),
        ):
            for batch in _chunks(mine):
                steps = [
                    -(-max(n.src_n, n.rep_n) // _parts(max(n.src_n, n.rep_n), threshold, self.factor))
                    for n in batch
                ]
                for n, ranked in zip(batch, side.points([n.rng for n in batch], steps), strict=True):
                    lo = n.rng.lo
                    points = tuple(p for p in ranked if lo is None or side.order(p) > side.order(lo))
                    cut = Cut(n.rng, points, rows=max(n.src_n, n.rep_n))
                    (cuts.append(cut) if points else leaves.append(n.rng))
        cuts.sort(key=lambda c: () if c.rng.lo is None else self.src.order(c.rng.lo))
        return cuts, leaves

    def _bounded(self, rng: KeyRange) -> KeyRange | None:
        """Return the open-ended integer range ``rng`` bounded by the keys either side holds
        in it (None when neither holds one)."""
        found = [b for pair in self._both(lambda side: side.bounds(rng)) for b in pair if b is not None]
        return KeyRange((min(found),), (max(found) + 1,)) if found else None

    def _settle(self, ranges: list[KeyRange]) -> None:
        """Download keys and row hashes of small ranges and repair what differs."""
        for batch in _chunks(sorted(ranges, key=lambda r: () if r.lo is None else self.src.order(r.lo))):
            src, rep = self._both(lambda side, b=batch: side.hashes(b))
            self.result.keys += len(src)
            self._apply({k for k in rep if k not in src}, [k for k, h in src.items() if rep.get(k) != h])

    def _remove_ranges(self, ranges: list[KeyRange]) -> None:
        """Remove every replica row of ranges the source has no row in (asking it nothing)."""
        for batch in _chunks(ranges):
            self._apply(set(self.rep.hashes(batch)), [])

    def _generic(self) -> None:
        """A source without SQL hashing (the demo's SQLite file): compare every row."""
        src = self.sync.source
        cols = self.compared
        conds = source_conditions(self.plan, pg=False)
        sql = f"SELECT {', '.join(quote_ident(c.name) for c in cols)} FROM {src._ident(self.plan.table)}" + (
            f" WHERE {' AND '.join(conds)}" if conds else ""
        )
        text = checksum.row_texter([c.kind for c in cols])
        at = [cols.index(k) for k in self.plan.key]
        hashes = {}
        for raw in src.execute(sql):
            values = [_generic_value(v, c) for v, c in zip(raw, cols, strict=True)]
            hashes[tuple(values[i] for i in at)] = checksum.h64(text(values))
        self.src.queries, self.src.rows = 1, len(hashes)
        rep = self.rep.hashes([KeyRange()])
        self.result.source_rows, self.result.replica_rows, self.result.keys = (
            len(hashes),
            len(rep),
            len(hashes),
        )
        self._apply({k for k in rep if k not in hashes}, [k for k, h in hashes.items() if rep.get(k) != h])

    def _apply(self, gone: set[Key], fetch: list[Key]) -> None:
        if gone:
            self.sync.remove([list(k) for k in sorted(gone, key=self.src.order)])
            self.result.removed += len(gone)
        if fetch:
            self.sync.refetch([list(k) for k in fetch])
            self.result.refetched += len(fetch)


def reconcile_table(
    source: Source,
    replica,
    plan: Plan,
    settings,
    tick=lambda: None,
    factor: int = FACTOR,
    threshold: int | None = None,
    first: int = FIRST,
    kind: str = "rows",
) -> ReconcileResult:
    """Reconcile one table now (comparing whole rows, or which keys exist: ``KINDS``)
    and return what it found."""
    sync = TableSync(source, replica, plan, settings, tick)
    result = Reconciler(sync, factor, threshold, first, kind).run()
    if result.removed or result.refetched:  # rows changed outside a pass: count them again
        st = replica.state(plan.table.replica_name)
        if st is not None:
            with replica.transaction():
                st.rows = replica.count(plan.table.replica_name)
                replica.save_state(st)
    log.info("%s", result.summary())
    return result


# -- the schedule --------------------------------------------------------------------------


def due(store: StateStore, name: str, every: float, now=None, since: str = "at") -> bool:
    """Return True when the table's last reconciliation (``since="verified_at"``: its last
    comparison of whole rows) is older than ``every``."""
    last = parse_iso((store.get(f"reconciled:{name}") or {}).get(since))
    return last is None or last + timedelta(seconds=every) <= (now or utcnow())


def after_pass(
    config,
    link,
    replica,
    store: StateStore,
    tables: list[TableResult],
    force: bool = False,
    tick=lambda: None,
) -> str | None:
    """Reconcile the tables that are due (all with ``force``) after a successful pass.

    Return an error sentence when the source failed during it (the pass then counts as
    failed); a table whose reconciliation fails otherwise is marked with an error.
    """
    for t in tables:  # a table copied whole just now is as reconciled as it gets
        if t.copied and not t.error and not force:
            now = iso(utcnow())
            store.put(f"reconciled:{t.name}", {"at": now, "verified_at": now, "note": "initial copy"})
    todo = [
        t
        for t in tables
        if not t.error
        and t.phase == "incremental"
        and (force or due(store, t.name, config.sync.reconcile_every))
    ]
    if not todo:
        return None
    try:
        source = link.source()
        shapes = source.describe([t.name for t in todo])
        for t in todo:
            rows = force or due(store, t.name, config.sync.verify_every, since="verified_at")
            _one(config, source, replica, store, shapes, t, tick, "rows" if rows else "keys")
    except Stopped:
        log.info("reconciliation interrupted: the agent is stopping")
    except (SourceError, TunnelError) as e:
        log.warning("reconciliation stopped: %s", e)
        return f"reconciliation stopped: {e}"
    return None


def plan_for(config, table, shape, source: Source, replica) -> Plan:
    """Return the plan the pass used: the columns the replica holds, masks applied."""
    plan = make_plan(table, shape, source.is_postgres)
    held = extras.columns(replica, table.replica_name)
    plan.columns = [c for c in plan.columns if c.name in held]  # drift not applied stays out
    masked = [i for i, c in enumerate(plan.columns) if c.name in table.mask_columns]
    if masked:
        plan.mask = masker(mask_key(config.state_dir), masked)
    return plan


def _one(config, source, replica, store, shapes, t: TableResult, tick, kind: str) -> None:
    try:
        if t.name not in shapes:
            return  # gone since the pass: the next pass reports it
        plan = plan_for(config, config.table(t.name), shapes[t.name], source, replica)
        result = reconcile_table(source, replica, plan, config.sync, tick, kind=kind)
    except (SourceError, TunnelError, Stopped):
        raise
    except ApplianceError as e:
        result = ReconcileResult(t.name, t.replica_name, at=iso(utcnow()), error=str(e))
        t.error = f"reconciliation failed: {e}"
        log.warning("%s: reconciliation failed: %s", t.name, e)
        store.event("reconcile", f"reconciliation of {t.name} failed: {e}", table=t.name)
    verified = (store.get(f"reconciled:{t.name}") or {}).get("verified_at")
    if result.kind == "rows" and not result.error:
        verified = result.at
    store.put(f"reconciled:{t.name}", {**asdict(result), "verified_at": verified})
    if result.removed or result.refetched:
        store.event("reconcile", result.summary(), table=t.name)
