"""Page sizes for a distant link: a round trip per page must not set the pace.

Each keyset page is one statement, so between two pages the link idles for one round
trip. On loopback that is a fraction of a millisecond; over a site's uplink it is 50-100
ms, a third of the time of a 20,000-row page once the bastion compresses it (issue 15).
So while the round trip (measured by the pass's probe, and at least ``SLOW``: loopback and
a LAN keep ``sync.batch_size``) is more than ``SHARE`` of a page's fetch time, the next
page asks for twice the rows, up to about ``MAX_PAGE_BYTES`` of text: pages stay short
statements, memory stays bounded, and every ``sync.batch_size`` rows of a page still
commit with their cursor.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

SHARE = 0.05  # the round trip may cost at most this share of a page's time
SLOW = 0.005  # a round trip from this up is a distant link; below (loopback, LAN) pages keep batch_size
# Text per page, about. The driver holds a page's result (~2x its text) until it is written;
# at most two pages live at once (table.prefetch), and Python holds one batch of rows.
MAX_PAGE_BYTES = 12 << 20
SAMPLE = 32  # rows looked at to estimate a row's size


def row_bytes(rows: Sequence[Sequence[Any]]) -> float:
    """Return the average text size of a row, from a sample of ``rows`` (at least 1)."""
    if not rows:
        return 1.0
    step = max(1, len(rows) // SAMPLE)
    sample = rows[::step]
    total = sum(len(v) if isinstance(v, (str, bytes)) else 8 for row in sample for v in row if v is not None)
    return max(1.0, total / len(sample))


def next_limit(limit: int, rows: Sequence[Sequence[Any]], seconds: float, round_trip: float) -> int:
    """Return the row limit of the next page, given this full page and its fetch time."""
    if round_trip < SLOW or round_trip <= SHARE * seconds:
        return limit
    most = int(MAX_PAGE_BYTES // row_bytes(rows))
    return max(limit, min(limit * 2, most))
