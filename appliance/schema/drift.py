"""Schema drift: compare a table's contract with its live shape and classify each change.

Non-breaking (BRIEF 4.5): new column, new table in a configured schema, widened type
(varchar(n) -> text or a larger n, int -> bigint, numeric precision up, real -> double),
NOT NULL dropped or added, new enum label. Breaking: dropped or renamed column, dropped
or renamed table, narrowed or changed type, enum label removed, primary key changed (a key
column retyped included), cursor column dropped, renamed or retyped.
A dropped and an added column with the same type at the same position are a rename.
Pure functions: the guard (``appliance.sync.guard``) applies the policies.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_INT_RANK = {"smallint": 1, "integer": 2, "bigint": 3}
_FLOAT_RANK = {"real": 1, "double precision": 2}


@dataclass(frozen=True)
class Drift:
    """One difference between the contract and the live source."""

    kind: str
    column: str
    breaking: bool
    detail: str
    value: str = ""  # the thing itself where one exists: a new table's name, new JSON keys

    def as_dict(self) -> dict:
        return asdict(self)


def _params(sql_type: str) -> tuple[str, list[int]]:
    m = re.match(r"^([a-z ]+?)\s*(?:\(([\d, ]+)\))?(\[\])*$", sql_type.strip())
    if not m:
        return sql_type, []
    return m.group(1).strip(), [int(x) for x in (m.group(2) or "").split(",") if x.strip()]


def is_widening(old: str, new: str) -> bool:
    """Return True when every value of type ``old`` fits type ``new`` unchanged."""
    (ob, op), (nb, np_) = _params(old), _params(new)
    text_like = ("character varying", "text", "character")
    if ob in _INT_RANK and nb in _INT_RANK:
        return _INT_RANK[nb] > _INT_RANK[ob]
    if ob in _FLOAT_RANK and nb in _FLOAT_RANK:
        return _FLOAT_RANK[nb] > _FLOAT_RANK[ob]
    if ob in _INT_RANK and nb == "numeric":
        return not np_ or np_[0] - (np_[1] if len(np_) > 1 else 0) >= 19
    if ob == "character varying" and nb == "text":
        return True
    if ob in text_like and nb in ("character varying", "text") and ob != "character":
        return not np_ or (bool(op) and np_[0] >= op[0])
    if ob == "numeric" and nb == "numeric":
        if not np_:
            return True
        if not op:
            return False
        o_scale, n_scale = (op[1] if len(op) > 1 else 0), (np_[1] if len(np_) > 1 else 0)
        return n_scale >= o_scale and np_[0] - n_scale >= op[0] - o_scale
    return False


def _columns_diff(contract: dict, live: dict) -> list[Drift]:
    old = {c["name"]: (i, c) for i, c in enumerate(contract["columns"])}
    new = {c["name"]: (i, c) for i, c in enumerate(live["columns"])}
    dropped = [n for n in old if n not in new]
    added = [n for n in new if n not in old]
    out: list[Drift] = []
    for name in list(dropped):
        pos, col = old[name]
        twin = next((a for a in added if new[a][1]["type"] == col["type"] and new[a][0] == pos), None)
        if twin:
            dropped.remove(name)
            added.remove(twin)
            out.append(
                Drift(
                    "column_renamed", name, True, f'column "{name}" was renamed to "{twin}" ({col["type"]})'
                )
            )
    out += [
        Drift("column_dropped", n, True, f'column "{n}" ({old[n][1]["type"]}) was dropped') for n in dropped
    ]
    out += [Drift("column_added", n, False, f'column "{n}" ({new[n][1]["type"]}) was added') for n in added]
    for name in old.keys() & new.keys():
        out += _column_changes(name, old[name][1], new[name][1])
    return out


def _column_changes(name: str, old: dict, new: dict) -> list[Drift]:
    out = []
    if old["type"] != new["type"]:
        if is_widening(old["type"], new["type"]):
            out.append(
                Drift("type_widened", name, False, f'"{name}" widened from {old["type"]} to {new["type"]}')
            )
        else:
            out.append(
                Drift(
                    "type_changed", name, True, f'"{name}" changed type from {old["type"]} to {new["type"]}'
                )
            )
    if old["nullable"] != new["nullable"]:
        if new["nullable"]:
            out.append(Drift("not_null_dropped", name, False, f'"{name}" may now be NULL'))
        else:
            out.append(Drift("not_null_added", name, False, f'"{name}" is now NOT NULL'))
    old_labels, new_labels = old.get("enum", []), new.get("enum", [])
    if old_labels != new_labels:
        gone = [x for x in old_labels if x not in new_labels]
        more = [x for x in new_labels if x not in old_labels]
        if gone:
            out.append(
                Drift("enum_label_removed", name, True, f'"{name}" lost enum label(s): {", ".join(gone)}')
            )
        if more:
            out.append(
                Drift("enum_label_added", name, False, f'"{name}" gained enum label(s): {", ".join(more)}')
            )
    return out


def compare(contract: dict, live: dict | None, cursor: str = "") -> list[Drift]:
    """Return every difference between the contract and the live table (None: dropped)."""
    if live is None:
        return [
            Drift(
                "table_dropped",
                "",
                True,
                f"table {contract['table']} no longer exists at the source "
                f"(dropped or renamed, or the role lost access)",
            )
        ]
    out = _columns_diff(contract, live)
    old_key, new_key = contract.get("primary_key", []), live.get("primary_key", [])
    # A key column retyped to another type is a changed key too: rows no longer match by it.
    retyped = [d.column for d in out if d.kind == "type_changed" and d.column in old_key]
    if old_key != new_key or retyped:
        out.append(
            Drift(
                "primary_key_changed",
                ",".join(new_key),
                True,
                f"primary key changed from ({', '.join(old_key)}) to ({', '.join(new_key)})"
                if old_key != new_key
                else f"the primary key column(s) {', '.join(retyped)} changed type",
            )
        )
    if cursor:
        touched = [
            d
            for d in out
            if d.column == cursor
            and d.breaking
            and d.kind in ("column_dropped", "column_renamed", "type_changed")
        ]
        for d in touched:
            out.append(
                Drift(
                    "cursor_changed", cursor, True, f'the cursor column "{cursor}" was affected: {d.detail}'
                )
            )
    return out


def new_tables(known: list[str], live: list[str], configured: list[str]) -> list[Drift]:
    """Return a non-breaking drift entry per table that appeared in a configured schema."""
    return [
        Drift("table_added", "", False, f"new table {name} appeared at the source", name)
        for name in sorted(set(live) - set(known) - set(configured))
    ]
