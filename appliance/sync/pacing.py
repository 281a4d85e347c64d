"""Page sizes: bounded by bytes, and large enough that a round trip per page does not set the pace.

A page's rows live in the driver's result until they are written, so a page must be
bounded by its size, not by its row count: 20,000 rows of a table of 1 MB documents is
20 GB (issue 14's red team: 200 rows of 1 MB took the agent to 500 MB). Each page's size is
estimated from a sample of its rows, and the next page asks for at most ``PAGE_BYTES`` of
text; Python turns at most ``BATCH_BYTES`` of it into rows at a time. A read's first page
is sized the same way before any of its rows arrive, from ``FIRST_SAMPLE`` rows of the
table: the newest ones measured by the pass's marks statement (``marks``: no statement
more), the replica's own for the reads that follow them (local), or their sizes measured
at the source (one short statement, when a table is first copied or refreshed whole).
Measured with 200 rows of 1 MB (`appliance sync --once`, copy and window re-read): 500 MB
with pages of ``sync.batch_size`` rows, 115 MB now; small rows are unchanged (57 MB).

Each keyset page is one statement, so between two pages the link idles for one round
trip. On loopback that is a fraction of a millisecond; over a site's uplink it is 50-100
ms, a third of the time of a 20,000-row page once the bastion compresses it (issue 15).
So while the round trip (measured by the pass's probe, and at least ``SLOW``: loopback and
a LAN keep ``sync.batch_size``) is more than ``SHARE`` of a page's fetch time, the next
page asks for twice the rows, up to the same ``PAGE_BYTES``: pages stay short statements,
memory stays bounded, and every ``sync.batch_size`` rows of a page still commit with their
cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHARE = 0.05  # the round trip may cost at most this share of a page's time
SLOW = 0.005  # a round trip from this up is a distant link; below (loopback, LAN) pages keep batch_size
# Text per page, about. The driver holds a page's result, and at most two pages live at
# once (table.prefetch). Measured with 1 MB rows: a peak of 115 MB with 12 or 16 MB pages
# (below BRIEF 6's 150 MB); 12 MB was the distant link's tuned size (issue 15), and larger
# pages only lengthen the copy's last, unoverlapped page there (bench_link).
PAGE_BYTES = 12 << 20
BATCH_BYTES = 4 << 20  # text turned into Python rows at once, about (its strings cost as much again)
FIRST_SAMPLE = 8  # rows whose size sizes a read's first page
SAMPLE = 32  # rows looked at to estimate a row's size


def row_bytes(rows: Sequence[Sequence[Any]]) -> float:
    """Return the average text size of a row, from a sample of ``rows`` (at least 1)."""
    if not rows:
        return 1.0
    step = max(1, len(rows) // SAMPLE)
    sample = rows[::step]
    total = sum(len(v) if isinstance(v, (str, bytes)) else 8 for row in sample for v in row if v is not None)
    return max(1.0, total / len(sample))


def fitting(size: float) -> int:
    """Return how many rows of ``size`` bytes fit in a page (at least one)."""
    return max(1, int(PAGE_BYTES // max(1.0, size)))


def batch_rows(batch_size: int, rows: Sequence[Sequence[Any]]) -> int:
    """Return how many of a page's rows (``rows``: a sample of them) to turn into Python
    rows and commit at once: ``batch_size``, fewer when that many would exceed BATCH_BYTES."""
    return max(1, min(batch_size, int(BATCH_BYTES // row_bytes(rows))))


def first_limit(batch_size: int, size: float) -> int:
    """Return the row limit of a read's first page: ``batch_size`` rows, fewer when rows
    of ``size`` bytes would not fit."""
    return min(max(1, batch_size), fitting(size))


def next_limit(
    limit: int, rows: Sequence[Sequence[Any]], seconds: float, round_trip: float, base: int
) -> int:
    """Return the row limit of the next page, given this page's rows (or a sample of them),
    its fetch time, the link's round trip and ``base`` (``sync.batch_size``)."""
    most = fitting(row_bytes(rows))
    want = max(base, limit)
    if round_trip >= SLOW and round_trip > SHARE * seconds:
        want = max(base, limit * 2)
    return max(1, min(want, most))
