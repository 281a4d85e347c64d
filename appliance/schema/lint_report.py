"""The readiness report as text (a terminal), markdown (to send to the source team as it is)
and JSON (scripts), and the last report of each table kept for the status page.

Kept as ``<state_dir>/lint/<schema.table>.json``, written by ``appliance schema lint``;
the page reads it (it never connects to the source itself).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from .lint import Report
from .lint_facts import SAMPLE_ROWS, Check

FORMATS = ("text", "markdown", "json")


def _rows(report: Report) -> str:
    return f"about {report.rows:,} rows" if report.rows is not None else "rows unknown"


def text(report: Report) -> str:
    """Return the report for a terminal: one line per check, why and what to ask under findings."""
    n = len(report.findings)
    lines = [f"{report.table}: {n} finding{'s' if n != 1 else ''} ({_rows(report)})"]
    for c in report.checks:
        lines.append(f"  {'ok     ' if c.ok else 'FINDING'} {c.title}: {c.detail}")
        if not c.ok:
            lines.append(f"          why: {c.why}")
            lines.append(f"          ask: {c.ask}")
    return "\n".join(lines)


def _md(value: str) -> str:
    """Return text safe inside a markdown table cell (names can hold any character)."""
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").replace("<", "&lt;")


def markdown(reports: list[Report], source: str = "") -> str:
    """Return one markdown document for the source team, questions numbered across tables."""
    out = ["# Data readiness: questions for the source team", ""]
    out.append(
        f"Checked {'on ' + source + ' ' if source else ''}from the database catalog and a sample of "
        f"the first {SAMPLE_ROWS:,} rows of each table, read-only. Each question says why it "
        f"matters to the people who use this data."
    )
    number = 0
    for r in reports:
        out += ["", f"## {_md(r.table)}", "", f"{_rows(r).capitalize()}; {len(r.findings)} question(s)."]
        if r.where:
            out.append(f"Rows are filtered on our side by `{_md(r.where)}`.")
        out += ["", "| Check | Result |", "| --- | --- |"]
        out += [f"| {_md(c.title)} | {'ok' if c.ok else '**question**'}: {_md(c.detail)} |" for c in r.checks]
        if r.findings:
            out.append("")
        for c in r.findings:
            number += 1
            stop = "" if c.title.endswith("?") else "."
            out.append(f"{number}. **{_md(c.title)}{stop}** {_md(c.detail)}")
            out.append(f"   *Why it matters:* {_md(c.why)}")
            out.append(f"   *Question:* {_md(c.ask)}")
    return "\n".join(out) + "\n"


def as_json(reports: list[Report]) -> str:
    return json.dumps({"tables": [r.as_dict() for r in reports]}, indent=2)


def render(reports: list[Report], fmt: str, source: str = "") -> str:
    """Return the reports in ``fmt`` (one of FORMATS)."""
    if fmt == "json":
        return as_json(reports)
    if fmt == "markdown":
        return markdown(reports, source)
    return "\n\n".join(text(r) for r in reports)


def _path(state_dir: str | os.PathLike, table: str) -> Path:
    return Path(state_dir) / "lint" / f"{table.replace('/', '_')}.json"


def save(state_dir: str | os.PathLike, report: Report) -> None:
    """Keep the report for the status page (atomically: the page never reads half)."""
    path = _path(state_dir, report.table)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".lint-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(report.as_dict(), f)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def load(state_dir: str | os.PathLike, table: str) -> Report | None:
    """Return the last report kept for ``table``, or None (none yet, or unreadable)."""
    try:
        doc = json.loads(_path(state_dir, table).read_text(encoding="utf-8"))
        doc.pop("findings", None)
        doc["checks"] = [Check(**c) for c in doc["checks"]]
        return Report(**doc)
    except (OSError, ValueError, TypeError, KeyError):
        return None
