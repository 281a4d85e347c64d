"""A whole table's CSV made by worker processes, in key order, with memory bounded.

One process wrote 290k rows/s (fetching a row from SQLite is 1.3 µs, writing it 1.8 µs
with exact floats), where ``sqlite3 -csv`` writes 700k; the Pi has four cores. A large
export in key order is cut into chunks of consecutive keys (``CHUNK`` rows each, the
bounds found by the main connection: an index walk inside SQLite), and each chunk is
written by one of ``WORKERS`` processes (``python -m appliance.web.data_export``) on its
own read-only connection (``replica_read``: the same three guards). The server reads
the chunks back in order and sends them on.

Memory stays bounded: a worker writes into a pipe (1 MiB, about a chunk) and blocks when
the server has not read it yet, so each worker is at most one chunk ahead. A client that
goes away closes the stream: the workers are killed. One such export runs at a time; the
others take the one-process path. Each chunk is its own read, as the pages of the JSON
API are: the chunks' keys are disjoint and ordered, so no row is written twice, and a
row the agent inserts or updates during the export is in it once or not at all.
"""

from __future__ import annotations

import io
import json
import logging
import os
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import replace
from itertools import chain, islice
from pathlib import Path

from ..secrets import child_environment
from . import data_query as dq
from .data_rows import BATCH, csv_batch
from .replica_read import ReadOnly

CHUNK = 8192  # rows per chunk: about 1 MiB of CSV for a row of 8 columns (the pipe's size)
MIN_CHUNKS = 6  # smaller exports are not worth starting processes (about 50 ms each)
# One core is left to the sync agent where there are more than two (3 on a 4-core Pi):
# an export must not slow the replica it serves.
WORKERS = max(2, min((os.cpu_count() or 2) - 1, 4))
PIPE = 1 << 20  # bytes; Linux allows this much without privileges (pipe-max-size)
_FRAME = struct.Struct("<I")
log = logging.getLogger(__name__)
_one = threading.Lock()  # one parallel export at a time: the cores are shared


def _key_sql(name: str) -> str:
    return "rowid" if name == "rowid" else dq.quote_ident(name)


def bounds(ro: ReadOnly, q: dq.Query) -> Iterator[object]:
    """Yield the last key of each chunk of CHUNK rows, in order (the last chunk is open)."""
    key = _key_sql(q.table.key[0])
    sql = f"SELECT {key} FROM {dq.quote_ident(q.table.name)}"
    where = [f"({w})" for w in q.where]
    after: object = None
    while True:
        cond = where + ([f"{key} > ?"] if after is not None else [])
        text = sql + (" WHERE " + " AND ".join(cond) if cond else "")
        params = q.params + ([after] if after is not None else [])
        cursor = ro.execute(f"{text} ORDER BY {key} LIMIT 1 OFFSET {CHUNK - 1}", params)
        row = ro.fetch(cursor, 1)
        cursor.close()
        if not row:
            return
        after = row[0][0]
        yield after


def eligible(q: dq.Query) -> bool:
    """Return True when ``q`` is a whole export in the order of a one-column key."""
    return q.size is None and q.sort is None and q.after is None and len(q.table.key) == 1


def chunk_sql(q: dq.Query, lo: object, hi: object) -> tuple[str, list]:
    """Return the SELECT of the rows with ``lo < key <= hi`` (None: unbounded)."""
    key = _key_sql(q.table.key[0])
    where, params = list(q.where), list(q.params)
    if lo is not None:
        where, params = [*where, f"{key} > ?"], [*params, lo]
    if hi is not None:  # the first chunk also holds the NULL keys SQLite sorts first
        below = f"{key} <= ?" if lo is not None else f"{key} <= ? OR {key} IS NULL"
        where, params = [*where, below], [*params, hi]
    return dq.select(replace(q, where=where, params=params), None)


class _Worker:
    """One worker process: chunks go in as JSON lines, CSV comes out in frames."""

    def __init__(self, path: Path, width: int, blobs: list[int]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(path), str(width), json.dumps(blobs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env=child_environment(),  # not the page's token (web.api_token_env)
        )
        try:
            import fcntl

            fcntl.fcntl(self.proc.stdout.fileno(), fcntl.F_SETPIPE_SZ, PIPE)  # type: ignore[union-attr]
        except (ImportError, AttributeError, OSError):
            pass  # the default 64 KiB: less ahead, still right

    def send(self, sql: str, params: list) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps([sql, params]).encode() + b"\n")
        self.proc.stdin.flush()

    def frames(self) -> Iterator[bytes]:
        """Yield one chunk's CSV, frame by frame."""
        out = self.proc.stdout
        assert out is not None
        while True:
            head = out.read(_FRAME.size)
            if len(head) < _FRAME.size:
                raise RuntimeError(f"a CSV worker ended early (exit {self.proc.poll()})")
            (size,) = _FRAME.unpack(head)
            if not size:
                return
            yield out.read(size)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout):
            if f is not None:
                f.close()


def export_csv(ro: ReadOnly, q: dq.Query, blobs: list[int]) -> Iterator[bytes]:
    """Yield the CSV rows (no header) of the whole export ``q`` (``eligible``), in worker
    processes when it is large and no other export has them, else in this thread."""
    if _one.acquire(blocking=False):  # before the bounds: another export has the workers
        try:
            cuts = bounds(ro, q)
            first = list(islice(cuts, MIN_CHUNKS))
            # Keys go to the workers as JSON: no BLOB; a NULL (a primary key SQLite let be
            # NULL) cannot bound a chunk.
            splittable = len(first) == MIN_CHUNKS and not any(
                k is None or isinstance(k, bytes) for k in first
            )
            workers = _start(ro.path, len(q.table.columns), blobs) if splittable else []
            if workers:
                yield from _parallel(q, workers, chain(first, cuts))
                return
        finally:
            _one.release()
    sql, params = dq.select(q, None)
    cursor = ro.execute(sql, params)
    buffer = io.StringIO()
    width = len(q.table.columns)
    while batch := ro.fetch(cursor, BATCH):
        yield csv_batch(batch, width, blobs, buffer).encode("utf-8")


def _start(path: Path, width: int, blobs: list[int]) -> list[_Worker]:
    """Start the worker processes, or return [] when one cannot start (no process left
    under the unit's TasksMax, say): the export is then written in the server's thread."""
    workers: list[_Worker] = []
    try:
        for _ in range(WORKERS):
            workers.append(_Worker(path, width, blobs))
    except OSError as e:
        log.warning("CSV export in one process: a worker could not start (%s)", e)
        for worker in workers:
            worker.stop()
        return []
    return workers


def _parallel(q: dq.Query, workers: list[_Worker], cuts: Iterator[object]) -> Iterator[bytes]:
    """Yield the chunks the workers write, in key order; stop the workers at the end."""
    try:
        queue: deque[_Worker] = deque()
        lo: list[object] = [None]
        done = [False]

        def give(worker: _Worker) -> None:
            if done[0]:
                return
            hi = next(cuts, None)
            done[0] = hi is None
            worker.send(*chunk_sql(q, lo[0], hi))
            lo[0] = hi
            queue.append(worker)

        for _ in range(2):  # two chunks each: one to write, one to start on at once
            for worker in workers:
                give(worker)
        while queue:
            worker = queue.popleft()
            yield from worker.frames()
            give(worker)
    finally:
        for worker in workers:
            worker.stop()


def _work(path: str, width: int, blobs: list[int]) -> None:
    """Write the CSV of each chunk read from stdin to stdout, in frames (the worker's main)."""
    out = sys.stdout.buffer
    buffer = io.StringIO()
    with ReadOnly(Path(path)) as ro:
        for line in sys.stdin.buffer:
            sql, params = json.loads(line)
            cursor = ro.execute(sql, params)
            while batch := ro.fetch(cursor, BATCH):
                data = csv_batch(batch, width, blobs, buffer).encode("utf-8")
                out.write(_FRAME.pack(len(data)) + data)
            cursor.close()
            out.write(_FRAME.pack(0))
            out.flush()


if __name__ == "__main__":
    try:
        _work(sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3]))
    except (BrokenPipeError, KeyboardInterrupt):
        pass  # the server stopped reading: the client went away
