"""What the readiness report knows of one table, and one item of the report.

``sync.catalog`` fills ``TableFacts`` from the source's catalog and a bounded sample;
``lint_rules`` turns them into ``Check`` items. Pure data, no database.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .shape import Column

SAMPLE_ROWS = 10_000  # rows of each table the data checks look at (the first ones read)


@dataclass
class Sampled:
    """What the sample said about one column."""

    distinct: int = 0
    values: list[tuple[str, int]] = field(default_factory=list)  # most common first
    json_keys: list[tuple[str, int]] = field(default_factory=list)
    test_rows: int = 0  # rows marked as test data (marker true, or a test e-mail domain)
    test_domains: list[str] = field(default_factory=list)


@dataclass
class ForeignKey:
    columns: list[str]
    references: str  # schema.table(col, ...)


@dataclass
class TableFacts:
    """What the source says about one table: catalog facts and a bounded sample."""

    name: str
    exists: bool
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    rows: int | None = None  # the planner's estimate (or a capped count)
    sample_rows: int = 0
    indexed_first: list[str] = field(default_factory=list)  # first column of each index
    unique: list[list[str]] = field(default_factory=list)  # UNIQUE constraints and indexes
    checks: dict[str, list[str]] = field(default_factory=dict)  # column -> CHECK definitions
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)  # user triggers on the table
    sampled: dict[str, Sampled] = field(default_factory=dict)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def foreign_key(self, column: str) -> ForeignKey | None:
        return next((f for f in self.foreign_keys if column in f.columns), None)


@dataclass
class Check:
    """One item of the report: passed (``ok``) or a finding with why and what to ask."""

    check: str
    ok: bool
    title: str
    detail: str = ""
    column: str | None = None
    why: str = ""
    ask: str = ""
