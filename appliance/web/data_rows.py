"""Turn replica rows into JSON and streamed CSV (memory flat with the table's size).

JSON values are the replica's own: exact numerics stay the text the replica keeps
(``"12.50"``; a float would round them), a BLOB is base64 with a marker, as datasette
does. CSV is Python's csv module (QUOTE_MINIMAL, floats exact). Tried and not kept: CSV
lines built by SQLite in the SELECT (typeof, quoting and exact-float expressions per
value): SQLite evaluated them at 213k rows/s, slower than the csv module (bench_api).
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

BATCH = 2000  # rows fetched and written per chunk of a CSV stream


def b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode()


def _blob(value: Any) -> Any:
    # json.dumps calls this only for what JSON has no type for: the rare BLOB.
    if isinstance(value, bytes):
        return {"$base64": True, "encoded": b64(value)}
    raise TypeError(f"cannot serve a {type(value).__name__} as JSON")


def json_rows(names: list[str], rows: list[tuple]) -> list[dict[str, Any]]:
    """Return rows as objects keyed by column name."""
    return [dict(zip(names, row, strict=False)) for row in rows]


def dumps(doc: Any) -> str:
    """Return ``doc`` as JSON, BLOBs as base64 with a marker."""
    return json.dumps(doc, ensure_ascii=False, default=_blob)


def csv_value(value: Any) -> Any:
    return b64(value) if isinstance(value, bytes) else value


def csv_header(names: list[str]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(names)
    return buffer.getvalue().encode("utf-8")


def csv_stream(
    names: list[str],
    first: list[tuple],
    more: Callable[[], list[tuple]],
    done: Callable[[], None],
    blobs: list[int] | None = None,
) -> Iterator[bytes]:
    """Yield the header, then batches of rows through the csv module.

    ``more`` returns the next batch ([] at the end); ``done`` is called once at the end,
    also when the client goes away (the generator is closed). ``blobs`` lists the columns
    that may hold BLOBs (written as base64); None means any may (the rows of free SQL).
    A table without BLOB columns goes to the csv module untouched: a Python call per
    value cost more than the module's own work.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    try:
        yield csv_header(names)
        batch = first
        while batch:
            if blobs is None:
                writer.writerows([csv_value(v) for v in row] for row in batch)
            elif blobs:
                writer.writerows(_with_base64(row, blobs) for row in batch)
            else:
                writer.writerows(batch)
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            batch = more()
    finally:
        done()


def _with_base64(row: tuple, blobs: list[int]) -> list:
    out = list(row)
    for i in blobs:
        out[i] = csv_value(out[i])
    return out
