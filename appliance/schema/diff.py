"""`appliance schema diff`: the contract against the live source, for people and scripts."""

from __future__ import annotations

import difflib

from ..config import Config, TableSettings
from . import contract as contract_mod
from .drift import compare
from .shape import Shape


def live_diff(config: Config, tables: list[TableSettings], shapes: dict[str, Shape]) -> dict[str, dict]:
    """Return {table: {"drift": [entries], "text": readable diff}} for one live look.

    ``shapes`` are the tables as the source describes them now (the CLI opens the link).
    """
    report: dict[str, dict] = {}
    for t in tables:
        accepted = contract_mod.load(config.state_dir, t.name)
        shape = shapes.get(t.name)
        live = contract_mod.snapshot(shape, t.cursor) if shape else None
        if accepted is None:
            report[t.name] = {
                "drift": [],
                "text": f"{t.name}: no contract yet (it is written on the table's first sync)",
            }
            continue
        if live is not None:
            live["json_keys"] = accepted.get("json_keys", {})
        entries = compare(accepted, live, t.cursor)
        lines = [f"{t.name}: " + ("matches the contract" if not entries else f"{len(entries)} change(s)")]
        lines += [f"  {'BREAKING' if d.breaking else 'ok      '} {d.kind}: {d.detail}" for d in entries]
        if entries and live is not None:
            diff = difflib.unified_diff(
                contract_mod.render(accepted).splitlines(),
                contract_mod.render(live).splitlines(),
                "contract",
                "live source",
                lineterm="",
                n=1,
            )
            lines += ["  " + line for line in diff]
        report[t.name] = {"drift": [d.as_dict() for d in entries], "text": "\n".join(lines)}
    return report
