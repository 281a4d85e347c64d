"""The readiness report (``appliance schema lint``): a data engineer's questions to a source team.

Pure logic over ``TableFacts`` (what the source's catalog and a bounded sample say about
one table; ``sync.catalog`` gathers them read-only). Each check either passes, with what
it saw, or is a finding that says what was seen, why it matters to a consumer of the
data and the question to ask the source team. ``lint_report`` renders and keeps reports.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..config import TableSettings
from .lint_facts import Check, TableFacts
from .lint_rules import RULES


@dataclass
class Report:
    table: str
    exists: bool
    rows: int | None
    sample_rows: int
    where: str  # the configured filter, "" when none (or the table is not configured)
    configured: bool
    checks: list[Check]
    checked_at: str = ""

    @property
    def findings(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    def as_dict(self) -> dict:
        doc = asdict(self)
        doc["findings"] = len(self.findings)
        return doc


def lint(facts: TableFacts, settings: TableSettings | None, checked_at: str = "") -> Report:
    """Return the readiness report of one table."""
    where = settings.where if settings else ""
    checks: list[Check] = []
    if facts.exists:
        for rule in RULES:
            checks += rule(facts, settings)
    else:
        checks.append(
            Check(
                "exists",
                False,
                "Table not found",
                f"{facts.name} does not exist at the source, or this role cannot see it.",
                why="Nothing can be synced or checked until the appliance's role can read it.",
                ask=f"Is the table called {facts.name}? Could the read-only role be granted SELECT on it?",
            )
        )
    return Report(
        facts.name,
        facts.exists,
        facts.rows,
        facts.sample_rows,
        where,
        settings is not None,
        checks,
        checked_at,
    )
