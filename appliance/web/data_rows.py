"""Turn replica rows into JSON and streamed CSV (memory flat with the table's size).

JSON values are the replica's own: exact numerics stay the text the replica keeps
(``"12.50"``; a float would round them), a BLOB is base64 with a marker, as datasette
does. A page of row objects is written a column at a time (``json_objects``), character
for character what ``json.dumps`` writes for the rows as dicts. CSV is what Python's csv
module writes (QUOTE_MINIMAL, floats exact), byte for byte, but also made a column at a
time (``csv_text``): the module's 2.6 µs a row was twice SQLite's fetch. Tried and not
kept: CSV lines built by SQLite in the SELECT (typeof, quoting and exact-float expressions
per value): SQLite evaluated them at 213k rows/s, slower than the csv module (bench_api).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice, repeat
from json.encoder import encode_basestring  # a str as JSON, non-ASCII kept (C, as dumps uses)
from math import isfinite
from operator import is_
from typing import Any

BATCH = 2000  # rows fetched and written per chunk of a CSV stream
_EMPTY = {None: ""}.get  # _EMPTY(v, v): "" for NULL, else the value itself (a C-level map)
_SCALARS = {str, int, float, type(None)}  # what csv_text writes; a BLOB goes to the module
_QUOTED = re.compile('[,"\r\n]').search  # what makes QUOTE_MINIMAL quote a field
_NULL = {None: "null"}.get  # _NULL(v, v): "null" for NULL, else the value itself
_NULL_IF = {True: "null"}.get  # _NULL_IF(is_null, text): "null" where the value was NULL
_NUMBERS = {int, float, type(None)}


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


_ENCODER = json.JSONEncoder(ensure_ascii=False, default=_blob)  # dumps() for one value


def json_objects(names: list[str], rows: list[tuple]) -> str:
    """Return ``dumps(json_rows(names, rows))``, made a column at a time.

    Each column's values become JSON texts through C-level maps (``str`` for numbers, the
    encoder's own ``encode_basestring`` for text), then one join interleaves them with the
    pre-encoded ``"name": `` prefixes: 0.19 ms a page of 100 rows of bench_api's 8 columns,
    against 0.31 ms for the dicts and ``json.dumps`` (a quarter of it is the REAL column's
    shortest round-trip repr, which both pay). What a map cannot write exactly (a BLOB, a
    non-finite REAL, a column of mixed types) goes through the encoder value by value.
    Values after the ``names`` (a rowid fetched for paging) are left out.

    Not taken: orjson. It writes no spaces after ``,`` and ``:``, and small floats its own
    way (``0.00001`` for 1e-05, ``2.5e-7``), so it could only encode columns to be split
    and patched:
    at most about 0.08 ms less a page, beside 2 ms of CPU a page in the server: not worth
    a new dependency on the Pi.
    """
    width = len(names)
    if not rows:
        return "[]"
    lengths = set(map(len, rows))
    if width == 0 or len(set(names)) < width or len(lengths) > 1 or min(lengths) < width:
        return dumps(json_rows(names, rows))  # no columns, a name twice (free SQL): as dicts do
    args: list[Iterable[str]] = []
    for i, column in enumerate(islice(zip(*rows, strict=True), width)):
        args.append(repeat((", {" if i == 0 else ", ") + encode_basestring(names[i]) + ": "))
        args.append(_column_json(column))
    args.append(repeat("}"))
    # The repeats are endless: zip ends with the columns. [2:] drops the first ", ".
    return "[" + "".join(chain.from_iterable(zip(*args, strict=False)))[2:] + "]"


def _column_json(column: tuple) -> Iterable[str]:
    """Return each value of ``column`` as json.dumps writes it."""
    kinds = set(map(type, column))
    if kinds == {str}:
        return map(encode_basestring, column)
    if kinds == {str, type(None)}:
        blanked: Iterator[str] = map(_EMPTY, column, column)  # "" for NULL
        return map(_NULL_IF, map(is_, column, repeat(None)), map(encode_basestring, blanked))
    if kinds <= _NUMBERS and (float not in kinds or _finite(column)):
        # str() of an int or a finite float is its repr, which json.dumps writes.
        return map(str, map(_NULL, column, column) if type(None) in kinds else column)
    return map(_ENCODER.encode, column)  # BLOBs, Infinity, mixed text and numbers


def _finite(column: tuple) -> bool:
    """Return whether no float of a column of numbers and NULLs is infinite or NaN."""
    try:
        return isfinite(sum(filter(None, column)))  # an overflow only sends it the slow way
    except OverflowError:  # an int too large for a float
        return False


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
    Batches without a BLOB are written by ``csv_text``; the others go to the csv module
    (a table without BLOB columns untouched: a Python call per value cost more than the
    module's own work). Values after the ``names`` (a rowid fetched for paging) are left out.
    """
    buffer = io.StringIO()
    width = len(names)  # rows may carry a rowid after the data, for paging
    try:
        yield csv_header(names)
        batch = first
        while batch:
            yield csv_batch(batch, width, blobs, buffer).encode("utf-8")
            batch = more()
    finally:
        done()


def csv_batch(batch: list[tuple], width: int, blobs: list[int] | None, buffer: io.StringIO) -> str:
    """Return the first ``width`` values of each row as CSV (see csv_stream for ``blobs``)."""
    text = csv_text(batch, width)  # None: a BLOB or one column, for the module
    if text is not None:
        return text
    writer = csv.writer(buffer, lineterminator="\r\n")
    rows = (r[:width] for r in batch) if len(batch[0]) > width else batch
    if blobs is None:
        writer.writerows([csv_value(v) for v in row] for row in rows)
    elif blobs:
        writer.writerows(_with_base64(row, blobs) for row in rows)
    else:
        writer.writerows(rows)
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def csv_text(rows: list[tuple], width: int) -> str | None:
    """Return the first ``width`` values of ``rows`` as the csv module writes them (QUOTE_MINIMAL,
    CRLF), or None when the module must write them (a BLOB, a one-column row).

    Made a column at a time with C-level maps: a type check, str() (for a float, the same
    shortest exact text as the module's repr), and one search for the characters that need
    quotes; rows are then joined. A column whose values all need quotes (JSON) is quoted in
    one pass. About 0.8 µs a row of eight columns, against the module's 2.6 µs.
    """
    if width < 2:
        return None  # the module writes a lone empty field as "" (a blank line is no row)
    columns = []
    for column in islice(zip(*rows, strict=True), width):
        kinds = set(map(type, column))
        if not kinds <= _SCALARS:
            return None
        texts: Any = column
        if type(None) in kinds:
            texts = map(_EMPTY, column, column)
        if int in kinds or float in kinds:
            texts = map(str, texts)
        texts = list(texts)
        if str in kinds:
            texts = _quoted(texts)
        columns.append(texts)
    return "\r\n".join(map(",".join, zip(*columns, strict=True))) + "\r\n"


def _quoted(texts: list[str]) -> list[str]:
    """Return ``texts`` with quotes where QUOTE_MINIMAL puts them (quotes inside doubled)."""
    joined = "\0".join(texts)
    if _QUOTED(joined) is None:
        return texts
    needs = list(map(_QUOTED, texts))
    if all(needs) and joined.count("\0") == len(texts) - 1:  # no NUL inside a value
        return ('"' + joined.replace('"', '""').replace("\0", '"\0"') + '"').split("\0")
    return ['"' + t.replace('"', '""') + '"' if n else t for t, n in zip(texts, needs, strict=True)]


def _with_base64(row: tuple, blobs: list[int]) -> list:
    out = list(row)
    for i in blobs:
        out[i] = csv_value(out[i])
    return out
