"""The schema contract: what each configured table looked like when it was accepted.

One readable, diffable JSON file per table under ``<state_dir>/contract/`` (one column per
line), written on the table's first sync and changed only by ``appliance schema accept``.
The agent also keeps the latest live snapshot in the state store, so accepting (from the
CLI, the page or the button) needs no connection to the source.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .shape import Shape

VERSION = 1


def snapshot(shape: Shape, cursor: str = "", json_keys: dict | None = None) -> dict:
    """Return the contract form of a live table shape."""
    return {
        "table": shape.name,
        "columns": [
            {
                "name": c.name,
                "type": c.sql_type,
                "kind": c.kind,
                "nullable": c.nullable,
                **({"enum": list(c.enum_labels)} if c.enum_labels else {}),
            }
            for c in shape.columns
        ],
        "primary_key": list(shape.primary_key),
        "cursor": cursor,
        "json_keys": {k: sorted(v) for k, v in sorted((json_keys or {}).items())},
    }


def _path(state_dir: str | os.PathLike, table: str) -> Path:
    return Path(state_dir) / "contract" / f"{table}.json"


def load(state_dir: str | os.PathLike, table: str) -> dict | None:
    """Return the accepted contract of ``table`` (schema.table), or None before the first sync."""
    try:
        return json.loads(_path(state_dir, table).read_text())
    except FileNotFoundError:
        return None


def save(state_dir: str | os.PathLike, table: str, contract: dict) -> None:
    """Write the contract atomically, one column per line so `diff` reads well."""
    path = _path(state_dir, table)
    path.parent.mkdir(parents=True, exist_ok=True)
    cols = ",\n".join("    " + json.dumps(c, sort_keys=True) for c in contract["columns"])
    rest = {k: v for k, v in contract.items() if k != "columns"}
    head = json.dumps({"version": VERSION, **rest}, indent=2, sort_keys=True)[:-2]
    text = f'{head},\n  "columns": [\n{cols}\n  ]\n}}\n'
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def render(contract: dict) -> str:
    """Return the contract as a small table for people."""
    pk = set(contract.get("primary_key", []))
    lines = [f"{contract['table']}  (cursor: {contract.get('cursor') or 'none, full refresh'})"]
    for c in contract["columns"]:
        flags = ["PK"] if c["name"] in pk else []
        flags += [] if c["nullable"] else ["NOT NULL"]
        if c.get("enum"):
            flags.append("enum: " + ", ".join(c["enum"]))
        if c["name"] in contract.get("json_keys", {}):
            flags.append("json keys: " + ", ".join(contract["json_keys"][c["name"]]))
        lines.append(f"  {c['name']:<24} {c['type']:<28} {'  '.join(flags)}")
    return "\n".join(lines)
