"""One sync pass: for each configured table, copy what changed at the source into the replica.

Per table (BRIEF 4.4):
- first, an initial copy in key order, resumable: each page and the key reached commit
  together; the cursor's high-water mark is taken *before* the copy starts, so rows that
  change during the copy are read again by the first incremental pass;
- then incremental passes by (cursor, key), starting ``lookback`` before the last cursor
  read, so transactions that committed late with an older cursor are still seen; pages
  are upserted, so re-reading is harmless; each page commits with its cursor;
- rows whose cursor is NULL are re-read by key every pass (they cannot be ordered);
- tables without a cursor are refreshed whole into a scratch table and swapped in atomically.
A row that no longer matches the table's ``where`` filter, or that is soft-deleted with
``soft_delete_action = "drop"``, is removed from the replica when it is read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..clock import iso, utcnow
from ..config import SyncSettings, TableSettings
from ..errors import QueryError, SourceSchemaError
from ..schema.shape import Column, Shape
from . import extras, history, marks, pacing
from .marks import Mark, Wanted
from .replica import Replica, TableState
from .source import Page, Row, Source
from .typemap import pg_size_expr, quote_ident

log = logging.getLogger(__name__)


@dataclass
class TableResult:
    """What one table's part of a pass did."""

    name: str
    replica_name: str
    read: int = 0
    written: int = 0
    deleted: int = 0
    rows: int | None = None
    last_sync: str | None = None
    phase: str = ""
    copied: bool = False  # the initial copy finished in this pass
    error: str | None = None
    note: str | None = None
    seconds: float = 0.0


@dataclass
class Plan:
    """How to read one table: the columns fetched, the key, the cursor, the flags."""

    table: TableSettings
    columns: list[Column]
    key: list[Column]
    cursor: Column | None
    flags: dict[str, str] = field(default_factory=dict)
    mask: Callable[[list[Row]], list[Row]] | None = None  # mask_columns -> keyed hashes

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def key_of(self, row: Row) -> list:
        return [row[self.columns.index(k)] for k in self.key]


def make_plan(table: TableSettings, shape: Shape, pg: bool, only: set[str] | None = None) -> Plan:
    """Return the read plan for a table, or raise SourceSchemaError naming the config key.

    ``only`` limits the columns to those (drift policy ``ignore``: what still fits).
    """
    names = {c.name for c in shape.columns}
    for key_name, wanted in (
        ("primary_key", table.primary_key),
        ("history", table.history),
        ("exclude_columns", table.exclude_columns),
        ("mask_columns", table.mask_columns),
    ):
        missing = [c for c in wanted if c not in names]
        if missing:
            raise SourceSchemaError(
                f"{table.name}: {key_name} names column(s) "
                f"{', '.join(missing)} that the source table does not have."
            )
    for key_name, col_name in (("cursor", table.cursor), ("soft_delete", table.soft_delete)):
        if col_name and col_name not in names:
            raise SourceSchemaError(
                f'{table.name}: {key_name} = "{col_name}" is not a column of the '
                f"source table (columns: {', '.join(sorted(names))})."
            )
    columns = [
        c for c in shape.columns if c.name not in table.exclude_columns and (only is None or c.name in only)
    ]
    key_names = table.primary_key or shape.primary_key
    if table.cursor and not key_names:
        raise SourceSchemaError(
            f"{table.name} has no primary key, which incremental sync needs "
            f"as a tie-breaker. Set primary_key = [...] for it in the config, "
            f"or remove cursor to refresh it whole."
        )
    clash = set(table.mask_columns) & ({*key_names, table.cursor} - {""})
    if clash:
        raise SourceSchemaError(
            f"{table.name}: mask_columns cannot hold the key or cursor column "
            f"({', '.join(sorted(clash))}): rows are paged by their real "
            f"values. Remove it from mask_columns."
        )
    plan = Plan(
        table,
        columns,
        [shape.column(k) for k in key_names],
        shape.column(table.cursor) if table.cursor else None,
    )
    if table.soft_delete and table.soft_delete_action == "drop":
        col = shape.column(table.soft_delete)
        q = quote_ident(col.name)
        if col.kind == "boolean":
            plan.flags["_deleted"] = f"coalesce({q}, false)" if pg else f"coalesce({q}, 0) <> 0"
        else:
            plan.flags["_deleted"] = f"{q} IS NOT NULL"
    return plan


def prefetch(items: Iterable, ahead: int = 1) -> Iterator:
    """Yield from ``items``, produced in a thread at most ``ahead`` items ahead.

    An item counts as alive from the moment the thread starts producing it until the
    consumer asks for the one after it, so at most ``ahead + 1`` exist at once: with pages
    of a few megabytes, that bound is the agent's memory.
    """
    q: queue.Queue = queue.Queue()
    slots = threading.Semaphore(ahead + 1)
    stop, done = threading.Event(), object()

    def produce() -> None:
        it = iter(items)
        try:
            while True:
                while not slots.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                try:
                    item = next(it)
                except StopIteration:
                    q.put(done)
                    return
                q.put(item)
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            q.put(e)

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
            slots.release()  # the consumer is done with it: the next may be produced
    finally:
        stop.set()
        worker.join()  # a producer mid-item (a statement running) finishes it first


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector during a bulk copy.

    Every page is tens of thousands of fresh row tuples, which start a collection every
    700 allocations, each walking the young objects: 1,450 collections and about 6% of
    the agent's CPU per million rows (bench_sync). Rows hold no reference cycles.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class TableSync:
    """Sync one table for one pass."""

    def __init__(
        self,
        source: Source,
        replica: Replica,
        plan: Plan,
        settings: SyncSettings,
        tick: Callable[[], None] = lambda: None,
        inspect: Callable[[list[Row]], None] = lambda rows: None,
        mark: Mark | None = None,
    ) -> None:
        self.source, self.replica, self.plan, self.settings = source, replica, plan, settings
        self.mark = mark  # the pass's high-water mark of this table (marks.read_marks)
        self.table = plan.table
        self.name = plan.table.replica_name
        self.tick = tick
        self.inspect = inspect  # data checks on rows that arrive after the first copy
        # The row count is kept running (count(*) scans the whole table): rows added minus
        # deleted by this pass. The stored count reads -1 while a pass is writing, so a pass
        # that was killed midway makes the next one count for real.
        self.added = 0
        self.base_rows = 0
        self.dirty = False
        self.recount = False  # set by paths that change rows outside _write
        self.st: TableState | None = None
        self.result = TableResult(plan.table.name, self.name)

    def run(self) -> TableResult:
        t0 = time.monotonic()
        st = self.st = self._prepare()
        cursor = self.plan.cursor
        if cursor is None:  # also a table synced by a cursor the config no longer names
            st.phase = "full"
        if cursor is None or st.phase == "full":
            self._full_refresh(st)
        else:
            if st.phase == "initial":
                self._initial_copy(st)
            self._incremental(st, cursor)
            self._implausible_rows(cursor)
            self._null_cursor_rows(cursor)
        self._finish(st)
        self.result.phase = st.phase
        self.result.seconds = time.monotonic() - t0
        return self.result

    # -- setup ---------------------------------------------------------------------------
    def _prepare(self) -> TableState:
        st = self.replica.state(self.name)
        cols = [[c.name, c.sql_type, c.kind] for c in self.plan.columns]
        if st is not None and self.replica.table_exists(self.name):
            self._add_new_columns(st, cols)
            return st
        phase = "initial" if self.plan.cursor else "full"
        hw = None
        if self.plan.cursor:  # an 'infinity' must not become the mark the first pass starts from
            hw = marks.plausible_max(self.source, self.table, self.plan.cursor, self.settings.lookback)
        st = TableState(
            self.name,
            self.table.name,
            phase,
            None,
            None,
            None,
            hw,
            cols,
            [k.name for k in self.plan.key],
            None,
            0,
            0,
        )
        with self.replica.transaction():
            self.replica.drop_table(self.name)
            self.replica.create_table(self.name, self.plan.columns, st.key)
            self.replica.save_state(st)
        return st

    def _add_new_columns(self, st: TableState, cols: list[list[str]]) -> None:
        """Add columns the source gained since the replica table was made (evolve)."""
        known = {c[0] for c in st.columns}
        new = [c for c in self.plan.columns if c.name not in known]
        if not new:
            return
        with self.replica.transaction() as db:
            for c in new:
                db.execute(
                    f"ALTER TABLE {quote_ident(self.name)} ADD COLUMN {quote_ident(c.name)} {c.replica_type}"
                )
            st.columns = st.columns + [x for x in cols if x[0] not in known]
            self.replica.save_state(st)
        if st.phase != "initial" and self.plan.key:
            self._backfill(new)

    def _backfill(self, new: list[Column]) -> None:
        """Fill columns added by evolve for the rows already copied: key + new columns only."""
        key = self.plan.key
        cols = key + [c for c in new if c not in key]
        sets = ", ".join(f"{quote_ident(c.name)} = ?" for c in new)
        cond = " AND ".join(f"{quote_ident(k.name)} = ?" for k in key)
        sql = f"UPDATE {quote_ident(self.name)} SET {sets} WHERE {cond}"
        first = pacing.first_limit(self.settings.batch_size, self._source_row_size(cols))
        page = Page(limit=first, filtered=True)
        n = len(key)
        for rows in prefetch(self._key_pages(cols, page)):
            with self.replica.transaction() as db:
                db.executemany(sql, [[*r[n : n + len(new)], *r[:n]] for r in rows])
        log.info("%s: backfilled %s", self.table.name, ", ".join(c.name for c in new))

    def _key_pages(self, cols: list[Column], page: Page):
        while True:
            rows = self.source.read_page(self.table, cols, self.plan.key, page, {})
            yield rows
            if len(rows) < page.limit:
                return
            page.after = list(rows[-1][: len(self.plan.key)])
            page.limit = pacing.next_limit(page.limit, rows, 0.0, 0.0, self.settings.batch_size)

    # -- reading -------------------------------------------------------------------------
    def _pages(self, order: list[Column], page: Page) -> Iterator[list[Row]]:
        """Yield keyset pages until the source has no more rows. A thread runs the next
        page's statement while this thread turns the previous page into rows and writes
        them (the driver and SQLite release the GIL while they wait)."""
        for pending in prefetch(self._fetch_pages(order, page)):
            # A page of the distant link is several batches: each is turned into rows and
            # committed with its cursor on its own, so Python holds one batch at a time,
            # and a batch of large rows holds a share of a page (pacing.BATCH_BYTES).
            for rows in pending.chunks(pacing.batch_rows(self.settings.batch_size, pending.sample)):
                if self.plan.mask is not None:
                    rows = self.plan.mask(rows)
                yield rows

    def _fetch_pages(self, order: list[Column], page: Page):
        while True:
            t0 = time.monotonic()
            pending = self.source.send_page(self.table, self.plan.columns, order, page, self.plan.flags)
            seconds = time.monotonic() - t0
            self.result.read += pending.count
            yield pending
            if not page.limit or pending.count < pending.limit or pending.last is None:
                return
            names = self.plan.names  # by name: an order column may be spelled with its base type
            page.after = [pending.last[names.index(c.name)] for c in order]
            page.limit = pacing.next_limit(
                page.limit, pending.sample, seconds, self.source.round_trip, self.settings.batch_size
            )
            self.tick()

    def _first_limit(self) -> int:
        """Return the row limit of this table's first page of a read (see ``pacing``)."""
        return pacing.first_limit(self.settings.batch_size, self._row_size())

    def _row_size(self) -> float:
        """Return the size of the largest of a few rows of this table: the replica's (local,
        no round trip) when it holds some, else measured at the source."""
        local = self._replica_row_size()
        return local if local is not None else self._source_row_size(self.plan.columns)

    def _replica_row_size(self) -> float | None:
        """Return the size of the largest of the replica's last inserted rows of this table."""
        cols = " + ".join(f"coalesce(length({quote_ident(n)}), 0)" for n in self.plan.names)
        if not cols or not self.replica.table_exists(self.name):
            return None
        sizes = self.replica.db.execute(
            f"SELECT {cols} FROM {quote_ident(self.name)} ORDER BY rowid DESC LIMIT {pacing.FIRST_SAMPLE}"
        ).fetchall()
        return max(float(r[0] or 0) for r in sizes) if sizes else None

    def _source_row_size(self, columns: list[Column]) -> float:
        """Return the size of the largest of a few source rows as read, in one short
        statement that returns sizes, not rows (they may be megabytes each)."""
        if not columns:
            return 0.0
        if self.source.is_postgres:
            sizes = [pg_size_expr(c) for c in columns]
        else:
            sizes = [f"coalesce(length({quote_ident(c.name)}), 0)" for c in columns]
        sql = f"SELECT {' + '.join(sizes)} FROM {self.source._ident(self.table)}"
        rows = self.source.execute(f"{sql} LIMIT {pacing.FIRST_SAMPLE}")
        return max((float(r[0] or 0) for r in rows), default=0.0)

    def _split(self, rows: list[Row], filtered: bool) -> tuple[list[Row], list[list]]:
        """Return (rows to write, keys to delete) from rows carrying flag values at the end."""
        n = len(self.plan.columns)
        flags = list(self.plan.flags) + (["_keep"] if self.table.where and not filtered else [])
        if not flags:
            return rows, []
        drop_at = n + flags.index("_deleted") if "_deleted" in flags else None
        keep_at = n + flags.index("_keep") if "_keep" in flags else None
        keep, gone = [], []
        for row in rows:
            if (drop_at is not None and row[drop_at] in (1, "1")) or (
                keep_at is not None and row[keep_at] in (0, "0")
            ):
                gone.append(self.plan.key_of(row))
            else:
                keep.append(row[:n])
        return keep, gone

    def _mark_dirty(self) -> None:
        """Mark the stored row count stale, in the caller's transaction, once per pass."""
        if not self.dirty and self.st is not None:
            self.dirty, self.base_rows = True, self.st.rows
            self.st.rows = -1
            self.replica.save_state(self.st)

    def _write(self, rows: list[Row], gone: list[list], *, upsert: bool) -> None:
        self._mark_dirty()
        names, key = self.plan.names, [k.name for k in self.plan.key]
        reset = self._extras()
        if self.table.history and rows:
            history.record(self.replica, self.plan, rows, iso(utcnow()))
        if upsert:
            if key and rows:  # keep the row count without a full count(*) of a big table
                known = self.replica.count_existing(self.name, key, [self.plan.key_of(r) for r in rows])
                self.added += len(rows) - known
            values: Sequence[Sequence[Any]] = rows
            if reset:  # the row was just read: not tombstoned, its cached hash stale
                names, values = names + reset, [(*r, *[None] * len(reset)) for r in rows]
            self.replica.upsert(self.name, names, key, values)
        else:
            self.replica.insert(self.name, names, rows)
            self.added += len(rows)
        if gone:
            before = self.replica.db.total_changes
            self.replica.delete(self.name, key, gone)
            self.added -= self.replica.db.total_changes - before
        self.result.written += len(rows)
        self.result.deleted += len(gone)

    def _initial_copy(self, st: TableState) -> None:
        page = Page(after=st.initial_key, limit=self._first_limit(), filtered=True)
        with gc_paused():
            for rows in self._pages(self.plan.key, page):
                keep, _ = self._split(rows, filtered=True)
                with self.replica.transaction():
                    self._write(keep, [], upsert=False)
                    if rows:
                        st.initial_key = self.plan.key_of(rows[-1])
                    self.replica.save_state(st)
        with self.replica.transaction():
            st.phase, st.cursor_value, st.cursor_key = "incremental", st.initial_hw, None
            self.replica.save_state(st)
        self.result.copied = True
        log.info("%s: initial copy done (%d rows)", self.table.name, self.result.written)

    def _incremental(self, st: TableState, cursor: Column) -> None:
        order = [cursor, *self.plan.key]
        mark = self._own_mark(cursor)
        if mark is not None and mark.error:
            raise QueryError(mark.error)  # this table's; the pass's other tables go on
        upper = mark.upper if mark is not None else self.source.max_cursor(self.table, cursor)
        if upper is None:
            return
        stamp = mark.stamp() if mark is not None else None
        if stamp is not None and st.mark == stamp and str(st.cursor_value) == str(upper):
            return  # nothing new, nothing late: the window holds what the last pass read
        lower = st.cursor_value
        if mark is not None and marks.beyond(lower, mark, cursor):
            # Stored by an agent that took an 'infinity' for the newest change: every pass
            # since read nothing. Read the table again by cursor, once, to catch up.
            log.warning(
                "%s: the stored cursor %r cannot be a time of change; reading the table again",
                self.table.name,
                lower,
            )
            lower = None
        size = mark.size if mark is not None else None
        if size is None:  # the pass's mark did not measure the newest rows: the replica's
            size = self._row_size()  # rows of the table say (no round trip per changed table)
        page = Page(
            lower_bound=lower,
            upper_bound=upper,
            lookback=self.settings.lookback,
            limit=pacing.first_limit(self.settings.batch_size, size),
            by_cursor=True,
            filtered=False,
        )
        ci = self.plan.columns.index(cursor)
        for rows in self._pages(order, page):
            if not rows:
                break
            keep, gone = self._split(rows, filtered=False)
            self.inspect(keep)
            with self.replica.transaction():
                self._write(keep, gone, upsert=True)
                st.cursor_value, st.cursor_key = rows[-1][ci], self.plan.key_of(rows[-1])
                self.replica.save_state(st)
        # Read through ``upper``: what the window held then is in the replica (_finish saves
        # it; a pass killed before that re-reads the window next time).
        st.mark = stamp

    def _own_mark(self, cursor: Column) -> Mark | None:
        """Return the pass's mark of this table, read now when the pass had none for it
        (its initial copy ended in this pass); None from a source without marks."""
        if self.mark is None and self.source.is_postgres:
            wanted = Wanted(self.table, cursor, self.plan.key, self.plan.columns)
            self.mark = marks.read_mark(self.source, wanted, self.settings.lookback).get(self.table.name)
        return self.mark

    def _implausible_rows(self, cursor: Column) -> None:
        """Read the rows whose cursor cannot be a time of change, every pass.

        An 'infinity', a '9999-12-31' sentinel or a NaN sorts after every real change, so
        the incremental read (which stops at the largest plausible value) never reaches
        them; like rows with a NULL cursor, they are read apart, by cursor and key. The
        table's note says how many and why, so the cost does not go unexplained.
        """
        mark = self.mark
        if mark is None or mark.error or not (mark.high or mark.low):
            return
        rng = marks.span(self.source._ident(self.table), cursor, self.settings.lookback)
        if rng is None:
            return
        base = dataclasses.replace(cursor, sql_type=marks.BASE_TYPES.get(cursor.kind, cursor.sql_type))
        order = [base, *self.plan.key]
        pages = []
        if mark.high and mark.ceiling is not None:
            pages.append(Page(lower_bound=mark.ceiling, by_cursor=True, filtered=False))
        if mark.low:
            pages.append(Page(upper_bound=rng.floor, by_cursor=True, filtered=False))
        ci = self.plan.columns.index(cursor)
        found, example = 0, None
        for page in pages:
            page.limit = self._first_limit()
            for rows in self._pages(order, page):
                keep, gone = self._split(rows, filtered=False)
                self.inspect(keep)
                with self.replica.transaction():
                    self._write(keep, gone, upsert=True)
                found += len(rows)
                if rows and example is None:
                    example = (rows[0][ci], self.plan.key_of(rows[0]))
        if example is not None:
            value, key = example
            where = ", ".join(f"{k.name}={v}" for k, v in zip(self.plan.key, key, strict=True))
            self.result.note = (
                f"{found} row(s) hold a {cursor.name} that cannot be a time of change "
                f"(e.g. {str(value)[:40]!r} at {where[:80]}): beyond the source's clock, infinite "
                f"or NaN. They are read again every pass; correct them at the source, or "
                f"choose another cursor."
            )
            log.warning("%s: %s", self.table.name, self.result.note)

    def _null_cursor_rows(self, cursor: Column) -> None:
        if not cursor.nullable or (self.mark is not None and not self.mark.nulls):
            return
        page = Page(limit=self._first_limit(), filtered=False, null_cursor=cursor.name)
        for rows in self._pages(self.plan.key, page):
            keep, gone = self._split(rows, filtered=False)
            self.inspect(keep)
            with self.replica.transaction():
                self._write(keep, gone, upsert=True)

    def _full_refresh(self, st: TableState) -> None:
        limit = self.settings.full_refresh_max_rows
        count = self.source.count(self.table)
        if count > limit:
            raise SourceSchemaError(
                f"{self.table.name} has {count} rows and no cursor; refreshing it whole each pass "
                f"is refused above sync.full_refresh_max_rows = {limit}. Set cursor for it, or "
                f"raise that limit."
            )
        tmp = f"_appliance_tmp_{self.name}"
        with self.replica.transaction():
            self.replica.drop_table(tmp)
            self.replica.create_table(tmp, self.plan.columns, st.key)
        size = self._source_row_size(self.plan.columns)  # what is there now, not the old copy's
        saved_name, self.name = self.name, tmp
        try:
            with gc_paused():
                for rows in self._refresh_pages(size):
                    keep, _ = self._split(rows, filtered=True)
                    self.inspect(keep)
                    with self.replica.transaction():
                        self._write(keep, [], upsert=False)
        except Exception:
            # A half copy is no use to anyone: free its space now, not at the next pass (and
            # if the replica cannot even drop it, the first error is the one to report).
            with contextlib.suppress(Exception), self.replica.transaction():
                self.replica.drop_table(tmp)
            raise
        finally:
            self.name = saved_name
        with self.replica.transaction():  # the swap: readers see old or new, never half
            self.replica.drop_table(self.name)
            self.replica.rename_table(tmp, self.name)
            self.replica.save_state(st)
        if not self.plan.key:
            self.result.note = "no primary key: refreshed whole each pass"

    def _refresh_pages(self, size: float) -> Iterator[list[Row]]:
        """Yield the whole table's rows for a refresh: keyset pages, or without a key one
        streamed statement (nothing to page by), a batch at a time either way.

        ``size``: the size of a row, measured before the refresh (a stream fetches the same
        number of rows each time: this is all that bounds it).
        """
        first = pacing.first_limit(self.settings.batch_size, size)
        if self.plan.key:
            yield from self._pages(self.plan.key, Page(limit=first, filtered=True))
            return
        for rows in self.source.stream(self.table, self.plan.columns, self.plan.flags, first):
            self.result.read += len(rows)
            self.tick()  # the heartbeat and systemd's watchdog, as per keyset page
            yield self.plan.mask(rows) if self.plan.mask is not None else rows

    def _finish(self, st: TableState) -> None:
        with self.replica.transaction():
            st.last_sync = iso(utcnow())
            # count(*) is a full scan: only when the running count cannot be trusted
            if not self.dirty:
                pass  # nothing written: the count stands
            elif st.phase == "full" or self.recount or self.base_rows < 0:
                st.rows = self.replica.count(self.name)
            else:
                st.rows = self.base_rows + self.added
            st.rows_synced_total += self.result.written
            self.replica.save_state(st)
        self.result.rows, self.result.last_sync = st.rows, st.last_sync

    # -- replica-only columns, history, reconciliation (issue 3) ---------------------------
    def _extras(self) -> list[str]:
        """Prepare this pass's target table once; return the columns an upsert resets."""
        ready = self.__dict__.setdefault("_extras_ready", {})
        if self.name not in ready:
            ready[self.name] = extras.ensure(self.replica, self.table, self.name)
            if self.table.history:
                history.ensure(self.replica, self.plan)
        return ready[self.name]

    def refetch(self, keys: list[list], chunk: int = 500) -> None:
        """Read the rows with these keys again and write them as the incremental pass does;
        ``chunk`` keys per statement at most, fewer when the rows are large (``pacing``)."""
        most, i = chunk, 0
        chunk = min(most, pacing.FIRST_SAMPLE)  # the rows differ from the replica's: size unknown
        while i < len(keys):
            rows = self.source.read_keys(
                self.table, self.plan.columns, self.plan.key, keys[i : i + chunk], self.plan.flags
            )
            i += chunk
            chunk = min(most, pacing.fitting(pacing.row_bytes(rows))) if rows else chunk
            self.result.read += len(rows)
            if self.plan.mask is not None:
                rows = self.plan.mask(rows)
            keep, gone = self._split(rows, filtered=False)
            with self.replica.transaction():
                self._write(keep, gone, upsert=True)
            self.tick()

    def remove(self, keys: list[list]) -> None:
        """Delete (or tombstone) rows found gone at the source, in one transaction."""
        self._extras()
        self.recount = True
        with self.replica.transaction():
            self._mark_dirty()
            extras.remove(
                self.replica, self.table, self.name, [k.name for k in self.plan.key], keys, iso(utcnow())
            )
        self.result.deleted += len(keys)
