"""The readiness report's rules: one function per question a data engineer asks.

Each takes the table's facts and its settings (None when it is not configured) and
returns checks: passed, with what was seen, or findings with why and what to ask.
"""

from __future__ import annotations

import re

from ..config import TableSettings
from .lint_facts import Check, Sampled, TableFacts
from .shape import Column

STATUS_NAME = re.compile(
    r"(^|_)(status|state|type|kind|code|stage|level|category|priority|flag|mode)s?($|_)", re.I
)
CURSOR_NAMES = (
    "updated_at", "modified_at", "last_modified", "last_updated", "updated_on", "modified_on",
    "changed_at", "update_time", "updated", "modified", "mtime",
)  # fmt: skip
SOFT_DELETE_NAMES = (
    "deleted_at",
    "is_deleted",
    "deleted",
    "deleted_on",
    "removed_at",
    "archived_at",
    "is_archived",
)
TEST_MARKER = re.compile(r"^(is_|has_)?(test|testing|demo|dummy|fake|sandbox|internal|qa)(_.*)?$", re.I)
EMAIL_NAME = re.compile(r"e?mail", re.I)
REFERENCE_NAME = re.compile(r".+_id$", re.I)
STATUS_MAX_VALUES = 50  # a named status column with more distinct values is not a code list
CODE_SHAPE = re.compile(r"^[A-Za-z0-9_.:/-]{1,32}$")
LOW_CARDINALITY = 12  # an unnamed text column with at most this many values looks like codes


def _names(cols) -> str:
    return ", ".join(cols)


def _verb(cols, one: str, many: str) -> str:
    return one if len(cols) == 1 else many


def _rows(facts: TableFacts) -> str:
    return f"about {facts.rows:,} rows" if facts.rows is not None else "an unknown number of rows"


def _primary_key(facts: TableFacts, settings: TableSettings | None) -> list[Check]:
    if facts.primary_key:
        return [Check("primary_key", True, "Primary key", _names(facts.primary_key))]
    configured = settings.primary_key if settings else []
    unique = [u for u in facts.unique if all(not (c := facts.column(n)) or not c.nullable for n in u)]
    seen = f" A UNIQUE NOT NULL constraint exists on ({_names(unique[0])})." if unique else ""
    using = f" The appliance is configured to use ({_names(configured)})." if configured else ""
    return [
        Check(
            "primary_key",
            False,
            "No primary key",
            f"The table has no primary key.{seen}{using}",
            why="Without a key a consumer cannot tell an updated row from a new one, duplicates go "
            "unnoticed, and the appliance must copy the whole table on every pass and cannot "
            "find deleted rows.",
            ask="Which columns identify a row? Could you declare them as the PRIMARY KEY?",
        )
    ]


def cursor_column(facts: TableFacts, settings: TableSettings | None) -> Column | None:
    """Return the configured cursor, or the column that looks like an update timestamp."""
    if settings and settings.cursor:
        return facts.column(settings.cursor)
    for name in CURSOR_NAMES:
        col = facts.column(name)
        if col is not None and col.kind in ("timestamptz", "timestamp", "integer"):
            return col
    return None


def _cursor(facts: TableFacts, settings: TableSettings | None) -> list[Check]:
    col = cursor_column(facts, settings)
    if col is None:
        return [
            Check(
                "cursor",
                False,
                "No update timestamp",
                f"No column such as updated_at records when a row last changed ({_rows(facts)}).",
                why="Without one, every consumer must re-read the whole table to find changes: the "
                "appliance refreshes it whole on every pass, which grows with the table.",
                ask="Could the table get an updated_at timestamptz NOT NULL column, set on every "
                "insert and update (by a trigger), with an index on it?",
            )
        ]
    out = []
    fixes = []  # (what is wrong, why it matters, what to ask for)
    if col.nullable:
        fixes.append(
            (
                "it allows NULL",
                "Rows with a NULL update time cannot be found by it and must be re-read every time.",
                "be made NOT NULL (with a default of now())",
            )
        )
    if col.name not in facts.indexed_first:
        fixes.append(
            (
                "no index starts with it",
                "Without an index every incremental read scans the whole table on your production database.",
                "get an index",
            )
        )
    problems = [p for p, _, _ in fixes]
    if problems:
        out.append(
            Check(
                "cursor",
                False,
                f"Update timestamp {col.name}",
                f"{col.name} ({col.sql_type}) is the column to sync on, but {' and '.join(problems)}.",
                column=col.name,
                why=" ".join(w for _, w, _ in fixes),
                ask=f"Could {col.name} {' and '.join(a for _, _, a in fixes)}?",
            )
        )
    else:
        out.append(
            Check("cursor", True, "Update timestamp", f"{col.name}: NOT NULL and indexed", column=col.name)
        )
    if not facts.triggers:
        out.append(
            Check(
                "cursor_maintained",
                False,
                f"Who sets {col.name}?",
                f"No trigger on the table maintains {col.name}; the application must set it.",
                column=col.name,
                why="An update that forgets it (a migration, an admin script, a bulk fix) is invisible "
                "to every incremental consumer until a full comparison finds it.",
                ask=f"Is {col.name} set by every code path that writes the table, including "
                "migrations and scripts? Would you add a trigger that sets it?",
            )
        )
    return out


def _timestamps(facts: TableFacts, _settings) -> list[Check]:
    naive = [c.name for c in facts.columns if c.kind == "timestamp"]
    if not naive:
        zoned = [c.name for c in facts.columns if c.kind == "timestamptz"]
        return [Check("time_zones", True, "Timestamps with time zone", _names(zoned) or "no timestamps")]
    return [
        Check(
            "time_zones",
            False,
            "Timestamps without time zone",
            f"{_names(naive)}: timestamp without time zone.",
            why="These values carry no zone: a consumer cannot place them in time without knowing "
            "which zone the application wrote, and in local time one hour a year happens twice.",
            ask=f"Which time zone {_verb(naive, 'does', 'do')} {_names(naive)} hold (UTC, or the "
            f"site's local time)? Could {_verb(naive, 'it', 'they')} become timestamptz?",
        )
    ]


def soft_delete_column(facts: TableFacts, settings: TableSettings | None) -> Column | None:
    if settings and settings.soft_delete:
        return facts.column(settings.soft_delete)
    return next((c for n in SOFT_DELETE_NAMES if (c := facts.column(n)) is not None), None)


def _deletes(facts: TableFacts, settings: TableSettings | None) -> list[Check]:
    col = soft_delete_column(facts, settings)
    if col is not None:
        return [Check("deletes", True, "Soft deletes", f"{col.name} marks deleted rows", column=col.name)]
    return [
        Check(
            "deletes",
            False,
            "Hard deletes to expect",
            f"No column marks deleted rows (deleted_at, is_deleted ...): a deleted row is gone "
            f"({_rows(facts)}).",
            why="A deleted row leaves no trace that an incremental reader can see. Deletions are "
            "found only by comparing the whole table periodically (checksums per key range, "
            f"sync.reconcile_every), which reads {_rows(facts)} on your database each time: "
            "their keys (the primary-key index) when the key is one integer column, else whole rows.",
            ask="Are rows of this table ever deleted? If so, could deletion set a deleted_at "
            "timestamp instead, or be recorded in a table we can read?",
        )
    ]


def _json(facts: TableFacts, _settings) -> list[Check]:
    out = []
    for c in facts.columns:
        if c.kind != "json":
            continue
        keys = facts.sampled.get(c.name, Sampled()).json_keys
        seen = ", ".join(f"{k} ({n})" for k, n in keys[:20]) or "none (no JSON objects in the sample)"
        out.append(
            Check(
                "json",
                False,
                f"JSON column {c.name}",
                f"{c.name} ({c.sql_type}); keys seen in the sample (rows holding each): {seen}.",
                column=c.name,
                why="Nothing in the database says which keys a document has or what they mean; a "
                "key renamed or dropped by a release breaks every consumer silently.",
                ask=f"Is there a schema for {c.name}? Which keys are always there, what do they "
                "mean, and will you tell us before they change?",
            )
        )
    return out


def _status_like(facts: TableFacts, c: Column) -> bool:
    if c.name in facts.primary_key or c.kind not in ("text", "enum", "integer"):
        return False
    s = facts.sampled.get(c.name)
    if c.kind == "enum":
        return True
    if s is None or not s.distinct:
        return False
    if STATUS_NAME.search(c.name):
        return s.distinct <= STATUS_MAX_VALUES
    # Unnamed: few values, many rows, and every value shaped like a code ("PAID", "a-1"),
    # not like a name or a sentence ("customer 1").
    return (
        c.kind != "integer"
        and s.distinct <= LOW_CARDINALITY
        and facts.sample_rows >= 5 * s.distinct
        and len(s.values) == s.distinct
        and all(CODE_SHAPE.match(v) for v, _ in s.values)
    )


def _status(facts: TableFacts, _settings) -> list[Check]:
    out = []
    for c in facts.columns:
        if not _status_like(facts, c):
            continue
        s = facts.sampled.get(c.name, Sampled())
        values = ", ".join(f"{v} ({n})" for v, n in s.values[:20])
        fk = facts.foreign_key(c.name)
        where = (
            f"the enum type {c.sql_type} ({', '.join(c.enum_labels)})"
            if c.kind == "enum"
            else f"a lookup table, {fk.references}"
            if fk
            else f"a CHECK constraint: {'; '.join(facts.checks[c.name])}"
            if facts.checks.get(c.name)
            else ""
        )
        seen = f"Values in the sample (rows): {values}." if values else ""
        if where:
            out.append(
                Check(
                    "status", True, f"Status codes in {c.name}", f"Listed by {where}. {seen}", column=c.name
                )
            )
            continue
        out.append(
            Check(
                "status",
                False,
                f"Status codes in {c.name} without a list",
                f"{c.name} looks like a code ({s.distinct} distinct values in the sample); no enum, "
                f"lookup table or CHECK constraint lists its values. {seen}",
                column=c.name,
                why="A consumer must guess what each code means and cannot know when a new one "
                "appears; undocumented codes are where reports silently go wrong.",
                ask=f"What does each value of {c.name} mean, which values can appear, and where "
                "are their descriptions kept? Could they live in a lookup table (or a CHECK)?",
            )
        )
    return out


def _references(facts: TableFacts, _settings) -> list[Check]:
    out = [
        Check("foreign_key", True, f"Foreign key {_names(f.columns)}", f"references {f.references}")
        for f in facts.foreign_keys
    ]
    loose = [
        c.name
        for c in facts.columns
        if REFERENCE_NAME.match(c.name)
        and c.name not in facts.primary_key
        and facts.foreign_key(c.name) is None
    ]
    if loose:
        out.append(
            Check(
                "foreign_key",
                False,
                "References without a foreign key",
                f"{_names(loose)} {_verb(loose, 'looks', 'look')} like a reference to another table, "
                "but no foreign key says so.",
                why="Without the constraint a row can point to a row that does not exist, and a "
                "consumer has to guess which table to join.",
                ask=f"Which table {_verb(loose, 'does', 'do')} {_names(loose)} refer to? Can "
                f"{_verb(loose, 'it', 'they')} point to rows that do not exist?",
            )
        )
    return out


def _test_data(facts: TableFacts, settings: TableSettings | None) -> list[Check]:
    markers = [c.name for c in facts.columns if TEST_MARKER.match(c.name)]
    emails = {n: s for n, s in facts.sampled.items() if EMAIL_NAME.search(n) and s.test_rows}
    if not markers and not emails:
        return [Check("test_data", True, "Test data", "no test markers or test e-mail domains in the sample")]
    seen = []
    for name in markers:
        n = facts.sampled.get(name, Sampled()).test_rows
        seen.append(f"{name} ({n:,} of {facts.sample_rows:,} sampled rows marked)")
    for name, s in emails.items():
        seen.append(f"{name} ({s.test_rows:,} sampled rows at {', '.join(s.test_domains)})")
    where = settings.where if settings else ""
    if where:
        return [
            Check("test_data", True, "Test data filtered", f"{'; '.join(seen)}; filtered by where = {where}")
        ]
    return [
        Check(
            "test_data",
            False,
            "Test data in production",
            f"Signs of test data: {'; '.join(seen)}. No where filter is configured.",
            why="Test orders and customers inflate counts and revenue in every report built on this "
            "data unless every consumer knows how to leave them out.",
            ask="How are test rows marked, reliably? Is this the complete rule (a flag, e-mail "
            "domains, a test account list), and are they ever removed?",
        )
    ]


RULES = (_primary_key, _cursor, _timestamps, _deletes, _json, _status, _references, _test_data)
