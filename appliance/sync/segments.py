"""Key ranges for reconciliation, spelled for both sides: the source and the replica.

Both sides must put every key in the same range, or a row would look missing on one
side and extra on the other (and be deleted). So keys are compared only where both
orders provably agree: integers, booleans, floats and uuids natively (the source's
primary key index serves the ranges); every other key type in its replica text form
under the "C" collation at the source, which orders like SQLite's BINARY (the byte
order of UTF-8 is code point order).

Float keys are the exception that needs spelling: the source orders -Infinity before every
number and Infinity, then NaN, after; the replica keeps those three as text (SQLite has no
NaN), which SQLite orders after every number. So the replica reads its two infinities as
its own infinite REALs, and Python orders keys as the source does (``Side.order``).

Each question covers many ranges at once (one statement per side per level of the
bisection), so the round trips through the tunnel grow with the depth, not with the
number of differences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..schema.shape import Column
from . import checksum
from .typemap import pg_literal_expr, pg_select_expr, quote_ident

NATIVE = frozenset({"integer", "boolean", "float", "uuid"})
# A float key's values that are text in the replica, and how the source orders them
# around the numbers (rank 1).
FLOAT_WORDS = {"-Infinity": 0, "Infinity": 2, "NaN": 3}
INFINITE = {"-Infinity": float("-inf"), "Infinity": float("inf")}
FEW = 8  # up to this many ranges, a statement selects them with a plain OR
# A single integer key's digest, for comparing which keys exist without hashing rows:
# h = (k mod p) * 48271 mod p (the Park-Miller generator's step, p = 2^31 - 1), then
# h^2 mod q (q = 2^31 - 19, both prime): squared, so that no sum of digests follows from
# a sum of keys (``missing_key`` relies on that). The same integer on both sides: their
# % truncates alike, negative keys included, and every step fits 64 bits.
DIGEST_MOD, DIGEST_MUL, DIGEST_SQUARE_MOD = 2147483647, 48271, 2147483629
# A bucket's keys are also summed as offsets from its lower bound when a bucket is at
# most this wide (the offset then fits PostgreSQL's int: a fast sum).
OFFSET_SPAN = 2**31 - 1
Key = tuple


@dataclass(frozen=True)
class KeyRange:
    """Keys from ``lo`` (inclusive) to ``hi`` (exclusive), in replica form; None: unbounded."""

    lo: Key | None = None
    hi: Key | None = None


@dataclass(frozen=True)
class Cut:
    """A key range cut into buckets at ``points``; with ``step`` (a single integer key) the
    points are every ``step`` from ``lo``, and rows find their bucket by arithmetic."""

    rng: KeyRange
    points: tuple[Key, ...] = ()
    step: int | None = None
    rows: int = 0  # about how many rows the range holds, to keep each statement short

    def children(self) -> list[KeyRange]:
        edges = [self.rng.lo, *self.points, self.rng.hi]
        return [KeyRange(a, b) for a, b in zip(edges, edges[1:], strict=False)]

    def slices(self, n: int) -> list[Cut]:
        """Return this cut as ``n`` cuts of consecutive buckets (same buckets, more statements)."""
        edges = [self.rng.lo, *self.points, self.rng.hi]
        per = -(-(len(edges) - 1) // max(1, n))
        return [
            Cut(
                KeyRange(edges[i], edges[min(i + per, len(edges) - 1)]),
                self.points[i : i + per - 1],  # the inner edges of these buckets
                self.step,
                self.rows * per // (len(edges) - 1),
            )
            for i in range(0, len(edges) - 1, per)
        ]


def integer_cut(rng: KeyRange, parts: int, rows: int = 0) -> Cut:
    """Return the cut of an integer key range [lo, hi) into at most ``parts`` equal buckets."""
    if rng.lo is None or rng.hi is None:
        raise ValueError("an integer cut needs a bounded key range")
    lo, hi = rng.lo[0], rng.hi[0]
    step = max(1, -(-(hi - lo) // parts))
    points = tuple((lo + step * i,) for i in range(1, parts) if lo + step * i < hi)
    return Cut(rng, points, step, rows)


class Side:
    """One side's SQL for key ranges; subclasses spell keys, hashes and parameters."""

    row_hash = ""
    sums: list[str] = []

    def __init__(
        self, run: Callable[[str, list], list], table: str, key: Sequence[Column], conds: Sequence[str]
    ) -> None:
        self.run, self.table, self.key, self.conds = run, table, list(key), list(conds)
        self.queries = 0
        self.rows = 0  # result rows returned (what crossed the wire, for the source)
        self.keys_only = False

    def compare_keys(self) -> Side:
        """Compare which keys exist, not what the rows hold (a single integer key).

        A range's checksum becomes the sum of its keys' digests, which both sides compute
        natively from the key (an index-only scan at the source, no row read or hashed),
        and a settled range's keys come without hashes. Finds hard deletes (and rows
        missing here), not rows changed without their cursor."""
        self.keys_only = True
        self.sums = [f"sum({self.digest()})"]
        return self

    def digest(self) -> str:
        k = self.lhs(self.key[0])
        h = f"(({k} % {DIGEST_MOD}) * {DIGEST_MUL} % {DIGEST_MOD})"
        return f"({h} * {h} % {DIGEST_SQUARE_MOD})"

    # -- what subclasses spell ---------------------------------------------------------
    def lhs(self, col: Column) -> str:
        return quote_ident(col.name)

    def lit(self, col: Column) -> str:
        return "?"

    def param(self, value: Any, col: Column) -> Any:
        return value

    def select(self, col: Column) -> str:
        return quote_ident(col.name)

    def value(self, raw: Any, col: Column) -> Any:
        return raw

    def combine(self, sums: Sequence[Any]) -> int:
        raise NotImplementedError

    # -- SQL pieces ------------------------------------------------------------------------
    def _query(self, sql: str, params: list) -> list:
        rows = self.run(sql, params)
        self.queries += 1
        self.rows += len(rows)
        return rows

    def compare(self, op: str, values: Key, params: list) -> str:
        """Return ``key op values`` (a row comparison for composite keys)."""
        lits = []
        for v, c in zip(values, self.key, strict=True):
            params.append(self.param(v, c))
            lits.append(self.lit(c))
        if len(self.key) == 1:
            return f"{self.lhs(self.key[0])} {op} {lits[0]}"
        return f"({', '.join(self.lhs(c) for c in self.key)}) {op} ({', '.join(lits)})"

    def inside(self, rng: KeyRange, params: list) -> str:
        conds = []
        if rng.lo is not None:
            conds.append(self.compare(">=", rng.lo, params))
        if rng.hi is not None:
            conds.append(self.compare("<", rng.hi, params))
        return "(" + (" AND ".join(conds) or "1 = 1") + ")"

    def where(self, ranges: Sequence[KeyRange], params: list) -> str:
        """Return the conditions selecting this side's rows inside the (sorted) ranges."""
        if ranges == [KeyRange()]:
            return " AND ".join(self.conds) or "1 = 1"
        if len(ranges) <= FEW:  # an OR the index serves well
            union = " OR ".join(self.inside(r, params) for r in ranges)
            return " AND ".join([*self.conds, f"({union})"])
        # Many ranges: an OR re-checked per row costs O(ranges) (seconds, measured), so
        # scan the outer bounds and find the row's slot (range or gap) by binary search.
        slots: list[Key | None] = []
        inside: list[str] = []
        for i, r in enumerate(ranges):
            slots.append(r.lo)
            inside.append("1")
            if i + 1 < len(ranges) and r.hi != ranges[i + 1].lo:
                slots.append(r.hi)
                inside.append("0")
        outer = self.inside(KeyRange(ranges[0].lo, ranges[-1].hi), params)
        member = self.search(slots, 0, len(slots) - 1, lambda i: inside[i], params)
        return " AND ".join([*self.conds, outer, f"({member}) = 1"])

    def search(
        self, bounds: Sequence[Key | None], first: int, last: int, leaf: Callable[[int], str], params: list
    ) -> str:
        """Return a CASE finding, by binary search, the slot (first..last) of a row's key
        given each slot's lower bound; ``leaf(i)`` spells the value for slot i.

        Only the first slot may be unbounded below (None): its bound is never compared."""
        if first == last:
            return leaf(first)
        mid = (first + last + 1) // 2
        bound = bounds[mid]
        if bound is None:
            raise ValueError(f"slot {mid} of a key search has no lower bound; only slot {first} may")
        cond = self.compare("<", bound, params)
        low = self.search(bounds, first, mid - 1, leaf, params)
        high = self.search(bounds, mid, last, leaf, params)
        return f"CASE WHEN {cond} THEN {low} ELSE {high} END"

    def _bucket(self, cuts: Sequence[Cut], bases: Sequence[int], params: list) -> str:
        def local(i: int) -> str:
            cut = cuts[i]
            if cut.step and cut.rng.lo is not None:  # integer key: arithmetic, no parameters
                return f"{bases[i]} + ({self.lhs(self.key[0])} - {int(cut.rng.lo[0])}) / {cut.step}"
            bounds: list[Key | None] = [None, *cut.points]
            return self.search(bounds, 0, len(cut.points), lambda j: str(bases[i] + j), params)

        return self.search([c.rng.lo for c in cuts], 0, len(cuts) - 1, local, params)

    def key_of(self, row: Sequence[Any]) -> Key:
        return tuple(self.value(v, c) for v, c in zip(row, self.key, strict=False))

    def order(self, key: Key) -> tuple:
        """Return a sort key that orders keys as both sides' SQL does (see the module)."""
        return tuple(_float_rank(v) if c.kind == "float" else v for v, c in zip(key, self.key, strict=False))

    # -- the questions ---------------------------------------------------------------------
    def bounds(self, rng: KeyRange = KeyRange()) -> tuple[int | None, int | None]:
        """Return the smallest and largest value of a single integer key (inside ``rng``)."""
        k = self.lhs(self.key[0])
        params: list = []
        where = self.where([rng], params)
        # Two index probes: SQLite answers min() and max() together by a full scan.
        ends = [
            f"(SELECT {k} FROM {self.table} WHERE {where} ORDER BY {k} {d} LIMIT 1)" for d in ("", "DESC")
        ]
        lo, hi = self._query(f"SELECT {', '.join(ends)}", params + params)[0]
        return lo, hi

    def checksums(self, cuts: Sequence[Cut]) -> list[dict[int, tuple[int, int]]]:
        """Return, per cut, {bucket: (rows, checksum)} of its non-empty buckets."""
        bases, n = [], 0
        for cut in cuts:
            bases.append(n)
            n += len(cut.points) + 1
        params: list = []
        bucket = self._bucket(cuts, bases, params)
        sql = (
            f"SELECT {bucket}, count(*), {', '.join(self.sums)} FROM {self.table} "
            f"WHERE {self.where([c.rng for c in cuts], params)} GROUP BY 1"
        )
        out: list[dict] = [{} for _ in cuts]
        slot = 0
        for row in sorted(self._query(sql, params), key=lambda r: int(r[0])):
            b = int(row[0])
            while slot + 1 < len(bases) and bases[slot + 1] <= b:
                slot += 1
            out[slot][b - bases[slot]] = (int(row[1]), self.combine(row[2:]))
        return out

    def range_checksums(self, cuts: Sequence[Cut]) -> list[dict[int, tuple[int, int, int | None]]]:
        """Return, per cut, {bucket: (rows, checksum, sum of key offsets)}, asking each
        bucket over its own key range; the offsets (each key minus the bucket's lower
        bound) are summed in buckets of an integer cut at most OFFSET_SPAN wide, else None.

        For key digests: a bucket is then an index range scan with a running sum, where
        grouping a scan by a computed bucket makes both databases hash or sort every row
        (measured on a million keys: 70-110 ms against 160-190 at the source, 120 against
        320-390 ms here)."""
        out: list[dict] = [{} for _ in cuts]
        for c, j, n, digests, offsets in self._bucket_rows(cuts):
            if n:
                # digests are summed exactly on both sides (each under 2^31): no combining
                out[c][j] = (int(n), int(digests or 0), None if offsets is None else int(offsets))
        return out

    def _bucket_rows(self, cuts: Sequence[Cut]) -> list[tuple]:
        """Return (cut, bucket, rows, digest sum, offset sum or None) of each bucket of the
        cuts; each side says how."""
        raise NotImplementedError

    def _keys_by_range(self, ranges: Sequence[KeyRange]) -> list[tuple]:
        """Return the keys of the rows in the ranges, read range by range (index range
        scans); each side says how."""
        raise NotImplementedError

    def points(self, ranges: Sequence[KeyRange], steps: Sequence[int]) -> list[list[Key]]:
        """Return, per range, every ``step``-th key of it in key order (ranked split points)."""
        params: list = []
        which = self.search([r.lo for r in ranges], 0, len(ranges) - 1, str, params)
        n = range(len(self.key))
        inner = ", ".join(
            [f"{self.select(c)} AS _k{i}" for i, c in zip(n, self.key, strict=True)]
            + [f"{self.lhs(c)} AS _o{i}" for i, c in zip(n, self.key, strict=True)]
        )
        keys = ", ".join(f"_k{i}" for i in n)
        order = ", ".join(f"_o{i}" for i in n)
        step = "CASE _n " + " ".join(f"WHEN {i} THEN {int(s)}" for i, s in enumerate(steps)) + " END"
        sql = (
            f"SELECT _n, {keys} FROM (SELECT _n, {keys}, row_number() OVER (PARTITION BY _n "
            f"ORDER BY {order}) AS _rn FROM (SELECT {which} AS _n, {inner} FROM {self.table} "
            f"WHERE {self.where(ranges, params)}) a) b "
            f"WHERE _rn - (_rn / {step}) * {step} = 0 ORDER BY _n, _rn"
        )  # no %: psycopg2
        out: list[list[Key]] = [[] for _ in ranges]
        for row in self._query(sql, params):
            out[int(row[0])].append(self.key_of(row[1:]))
        return out

    def hashes(self, ranges: Sequence[KeyRange]) -> dict[Key, int]:
        """Return {key: row hash} of every row in the ranges."""
        if self.keys_only:  # range by range: one scan from the first to the last would read
            return {self.key_of(r): 0 for r in self._keys_by_range(ranges)}  # all between
        params: list = []
        cols = ", ".join(self.select(c) for c in self.key)
        sql = f"SELECT {cols}, {self.row_hash} FROM {self.table} WHERE {self.where(ranges, params)}"
        return {self.key_of(r): int(r[-1]) for r in self._query(sql, params)}


class SourceSide(Side):
    """PostgreSQL: hashes computed in SQL, in the read-only session."""

    def __init__(self, run, table, key, conds, columns: Sequence[Column], utf8: bool = True) -> None:
        # JIT compiling these large expressions took seconds per statement (measured: 15 s
        # against 1.1 s without); off for each statement's own transaction only.
        super().__init__(lambda sql, params: run(sql, params, {"jit": "off"}), table, key, conds)
        self.row_hash = checksum.pg_row_hash(columns, utf8)
        self.sums = [f"sum({self.row_hash})"]

    def lhs(self, col: Column) -> str:
        q = quote_ident(col.name)
        if col.kind == "boolean":
            return f"{q}::int"
        if col.kind in NATIVE:
            return q
        return f'({pg_select_expr(col)}) COLLATE "C"'

    def lit(self, col: Column) -> str:
        if col.kind in ("float", "uuid"):
            return pg_literal_expr(col)
        return "%s"

    def param(self, value: Any, col: Column) -> Any:
        return value.hex() if isinstance(value, (bytes, bytearray)) else value

    def select(self, col: Column) -> str:
        return pg_select_expr(col)

    def value(self, raw: Any, col: Column) -> Any:
        if raw is None:
            return None
        if col.kind == "bytea":
            return bytes.fromhex(raw)
        if col.kind == "float":
            return raw if raw in FLOAT_WORDS else float(raw)  # in the replica's form
        return raw

    def combine(self, sums: Sequence[Any]) -> int:
        return int(sums[0] or 0) % checksum.MOD

    def digest(self) -> str:
        # bigint first: an int4 key times the multiplier would overflow; mod(), not %,
        # which psycopg2 would read as a parameter marker. |digest| < 2^31: int4 sums fast.
        k = f"{self.lhs(self.key[0])}::bigint"
        h = f"mod(mod({k}, {DIGEST_MOD}) * {DIGEST_MUL}, {DIGEST_MOD})"
        return f"mod({h} * {h}, {DIGEST_SQUARE_MOD})::int"

    def _bucket_rows(self, cuts: Sequence[Cut]) -> list[tuple]:
        """One statement: an integer cut's buckets through generate_series and a LATERAL
        aggregate over each bucket's key range; any other cut's buckets one by one."""
        k, digests = self.lhs(self.key[0]), self.sums[0]
        params: list = []
        parts = []
        for c, cut in enumerate(cuts):
            if cut.step and cut.rng.lo is not None and cut.rng.hi is not None:
                lo, hi, step = int(cut.rng.lo[0]), int(cut.rng.hi[0]), int(cut.step)
                start = f"({lo} + _g * {step}::bigint)"
                offsets = f"sum(({k} - {start})::int)" if step <= OFFSET_SPAN else "NULL"
                inner = " AND ".join(
                    [*self.conds, f"{k} >= {start}", f"{k} < least({lo} + (_g + 1) * {step}::bigint, {hi})"]
                )
                parts.append(
                    f"SELECT {c}, _g, _x.* FROM generate_series(0, {len(cut.points)}) AS _g, "
                    f"LATERAL (SELECT count(*) AS _n, {digests}, {offsets} FROM {self.table} "
                    f"WHERE {inner}) AS _x WHERE _x._n > 0"
                )
                continue
            for j, child in enumerate(cut.children()):
                parts.append(
                    f"SELECT {c}, {j}, count(*), {digests}, NULL FROM {self.table} "
                    f"WHERE {self.where([child], params)}"
                )
        return self._query(" UNION ALL ".join(parts), params) if parts else []

    def _keys_by_range(self, ranges: Sequence[KeyRange]) -> list[tuple]:
        """The keys come as runs of consecutive integers (first, last): a range of a few
        thousand keys with one deleted is two rows on the wire, not thousands. Sparse keys
        cost a row each, as before. (numeric: a key near either end of bigint minus its
        row number would overflow.)"""
        params: list = []
        k = self.lhs(self.key[0])
        parts = [f"SELECT {k} AS _k FROM {self.table} WHERE {self.where([r], params)}" for r in ranges]
        sql = (
            "SELECT min(_k), max(_k) FROM (SELECT _k, _k::numeric - row_number() OVER (ORDER BY _k) "
            f"AS _run FROM ({' UNION ALL '.join(parts)}) AS _u) AS _r GROUP BY _run"
        )
        return [
            (key,) for first, last in self._query(sql, params) for key in range(int(first), int(last) + 1)
        ]


class ReplicaSide(Side):
    """SQLite: each row's hash is cached in a bookkeeping column (see ``rowhash``)."""

    def __init__(self, run, table, key, conds, hash_column: str) -> None:
        super().__init__(run, table, key, conds)
        h = quote_ident(hash_column)
        self.row_hash = h
        self.sums = [f"sum({h} >> 32)", f"sum({h} & 4294967295)"]

    def lhs(self, col: Column) -> str:
        q = quote_ident(col.name)
        if col.kind == "float":  # the source's order: this spelling cannot use the key's index
            return f"(CASE {q} WHEN '-Infinity' THEN -9e999 WHEN 'Infinity' THEN 9e999 ELSE {q} END)"
        return q

    def param(self, value: Any, col: Column) -> Any:
        if col.kind == "float" and isinstance(value, str):
            return INFINITE.get(value, value)  # compared with the lhs above
        return value

    def combine(self, sums: Sequence[Any]) -> int:
        return checksum.split_sum(*sums)

    def _bucket_rows(self, cuts: Sequence[Cut]) -> list[tuple]:
        """A statement per bucket: SQLite runs each in tens of microseconds, from its
        statement cache, and a compound SELECT is limited to 500 terms."""
        digests, k = self.sums[0], self.lhs(self.key[0])
        out = []
        for c, cut in enumerate(cuts):
            if cut.step and cut.rng.lo is not None and cut.rng.hi is not None:  # one text, bound
                offsets = f"sum({k} - ?)" if cut.step <= OFFSET_SPAN else "NULL"
                sql = f"SELECT count(*), {digests}, {offsets} FROM {self.table} WHERE " + " AND ".join(
                    [*self.conds, f"{k} >= ?", f"{k} < ?"]
                )
                lo, hi, step = cut.rng.lo[0], cut.rng.hi[0], cut.step
                for j in range(len(cut.points) + 1):
                    start = lo + j * step
                    bounds = [start, min(start + step, hi)]
                    out.append(
                        (c, j, *self.run(sql, ([start] if cut.step <= OFFSET_SPAN else []) + bounds)[0])
                    )
                continue
            for j, child in enumerate(cut.children()):
                params: list = []
                sql = (
                    f"SELECT count(*), {digests}, NULL FROM {self.table} WHERE {self.where([child], params)}"
                )
                out.append((c, j, *self.run(sql, params)[0]))
        self.queries += 1
        return out

    def _keys_by_range(self, ranges: Sequence[KeyRange]) -> list[tuple]:
        out: list[tuple] = []
        for r in ranges:
            params: list = []
            sql = f"SELECT {self.select(self.key[0])} FROM {self.table} WHERE {self.where([r], params)}"
            out.extend(self.run(sql, params))
        self.queries += 1
        self.rows += len(out)
        return out


def _trunc_mod(a: int, m: int) -> int:
    """Return ``a`` mod ``m`` as SQL computes it: the remainder takes the sign of ``a``."""
    r = abs(a) % m
    return r if a >= 0 else -r


def key_digest(k: int) -> int:
    """Return the digest both sides' SQL computes for integer key ``k`` (``Side.digest``)."""
    h = _trunc_mod(_trunc_mod(k, DIGEST_MOD) * DIGEST_MUL, DIGEST_MOD)
    return _trunc_mod(h * h, DIGEST_SQUARE_MOD)


def missing_key(lo: int, hi: int, source: tuple, replica: tuple) -> int | None:
    """Return the one key the replica holds and the source no longer does in bucket
    [lo, hi), from both sides' (rows, digest sum, offset sum), or None when that is not
    what the figures say (then the bucket's keys are compared one by one).

    When the replica holds exactly one row more, the offsets name the key; it is taken only
    if its digest also accounts for the difference of the digest sums. A difference of
    another shape (two rows gone and one new, say) names a key whose squared digest would
    have to match by chance: about 1 in 2^31."""
    (s_n, s_digest, s_off), (r_n, r_digest, r_off) = source, replica
    if r_n - s_n != 1 or s_off is None or r_off is None:
        return None
    key = lo + r_off - s_off
    if not lo <= key < hi or key_digest(key) != r_digest - s_digest:
        return None
    return key


def _float_rank(value: Any) -> tuple[int, float]:
    if isinstance(value, str):
        return FLOAT_WORDS.get(value, 3), 0.0
    return 1, float(value)
