"""Data checks on rows as they arrive: values that break the data contract are drift too.

- NULL in a column the contract says is NOT NULL (the source relaxed it, or lies);
- a value outside the allowed set of a column (a configured list, or the distinct values of
  a small lookup table at the source): the undocumented status code;
- a JSON document with top-level keys not seen when the contract was written.
Each violation names the column, the rule and one example, truncated; pure functions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from .drift import Drift

EXAMPLE_LIMIT = 40


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def example(value) -> str:
    """Return a short printable example of a value: control characters escaped, at most
    EXAMPLE_LIMIT characters (a huge value from the source never reaches a page whole)."""
    text = value[: EXAMPLE_LIMIT * 4] if isinstance(value, str) else repr(value)[: EXAMPLE_LIMIT * 4]
    text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return text if len(text) <= EXAMPLE_LIMIT else text[: EXAMPLE_LIMIT - 3] + "..."


def json_keys(value) -> set[str]:
    """Return the top-level keys of a JSON object (text), or an empty set.

    A document nested deeper than Python's recursion limit (a source can hold one) is read
    by a linear scan of its top level instead: one row must never stop the sync.
    """
    if not isinstance(value, str):
        return set()
    try:
        doc = json.loads(value)
    except ValueError:
        return set()
    except RecursionError:
        return _top_level_keys(value)
    return set(doc) if isinstance(doc, dict) else set()


def _top_level_keys(text: str) -> set[str]:
    """Return the keys of the outermost JSON object by one pass over the text (no recursion)."""
    keys: set[str] = set()
    if not text.lstrip().startswith("{"):
        return keys  # an array or a scalar at the top has no keys
    depth, i, n = 0, 0, len(text)
    expect_key = False
    while i < n:
        ch = text[i]
        if ch == '"':
            end = i + 1
            while end < n and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if depth == 1 and expect_key:
                try:
                    keys.add(json.loads(text[i : end + 1]))
                except ValueError:
                    return set()
                expect_key = False
            i = end + 1
            continue
        if ch in "{[":
            depth += 1
            expect_key = ch == "{" and depth == 1
        elif ch in "}]":
            depth -= 1
        elif ch == "," and depth == 1:
            expect_key = True
        i += 1
    return keys


def check_rows(
    rows: Sequence[Sequence], names: list[str], key: list[str], contract: dict, allowed: dict[str, set[str]]
) -> list[Drift]:
    """Return one violation per (rule, column) found in ``rows`` (first example wins)."""
    found: dict[tuple[str, str], Drift] = {}
    index = {n: i for i, n in enumerate(names)}
    key_at = [index[k] for k in key if k in index]
    not_null = [c["name"] for c in contract["columns"] if not c["nullable"] and c["name"] in index]
    known_keys = {c: set(ks) for c, ks in contract.get("json_keys", {}).items() if c in index}
    allowed = {c: vals for c, vals in allowed.items() if c in index}
    for row in rows:
        where = ", ".join(f"{key[j]}={example(row[i])}" for j, i in enumerate(key_at))
        for col in not_null:
            if row[index[col]] is None and ("null_in_not_null", col) not in found:
                found[("null_in_not_null", col)] = Drift(
                    "null_in_not_null",
                    col,
                    False,
                    f'NULL arrived in "{col}", which the contract says is NOT NULL (row {where})',
                )
        for col, vals in allowed.items():
            v = row[index[col]]
            if v is not None and str(v) not in vals and ("value_not_allowed", col) not in found:
                found[("value_not_allowed", col)] = Drift(
                    "value_not_allowed",
                    col,
                    False,
                    f'"{col}" has the undocumented value {example(str(v))!r} (row {where})',
                )
        for col, ks in known_keys.items():
            extra = json_keys(row[index[col]]) - ks
            if extra and ("json_keys_changed", col) not in found:
                found[("json_keys_changed", col)] = Drift(
                    "json_keys_changed",
                    col,
                    False,
                    f'"{col}" has JSON key(s) not seen before: '
                    f"{example(', '.join(sorted(extra)))} (row {where})",
                    ",".join(sorted(extra)),
                )
    return list(found.values())
