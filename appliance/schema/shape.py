"""What a table looks like: its columns (name, SQL type, kind, nullability) and key.

The kinds are the appliance's own vocabulary for source types; ``REPLICA_TYPES`` says how
each is stored in the replica. The source describes tables in these terms, the contract
snapshots them, the sync maps them (``sync.typemap``).
"""

from __future__ import annotations

from dataclasses import dataclass

# kind -> replica column type (SQLite declared type; its affinity does the conversion)
REPLICA_TYPES = {
    "integer": "INTEGER",
    "float": "REAL",
    "numeric": "TEXT",  # exact decimal text; REAL would round
    "boolean": "INTEGER",  # 0 / 1
    "timestamptz": "TEXT",  # 2024-05-01T12:00:00.123456Z
    "timestamp": "TEXT",  # 2024-05-01T12:00:00.123456 (no zone: flagged naive)
    "date": "TEXT",
    "time": "TEXT",
    "interval": "TEXT",  # ISO-8601 duration, e.g. P1DT2H
    "uuid": "TEXT",
    "json": "TEXT",
    "array": "TEXT",  # JSON array
    "bytea": "BLOB",
    "text": "TEXT",
    "enum": "TEXT",
    "other": "TEXT",  # tsvector, inet, money ...: PostgreSQL's text form
}


@dataclass(frozen=True)
class Column:
    """One source column: its name, SQL type text, kind, nullability."""

    name: str
    sql_type: str  # format_type(), e.g. "numeric(12,2)", "character varying(20)"
    kind: str
    nullable: bool = True
    generated: bool = False
    enum_labels: tuple[str, ...] = ()

    @property
    def replica_type(self) -> str:
        return REPLICA_TYPES[self.kind]


@dataclass
class Shape:
    """What the source says a table looks like."""

    name: str  # schema.table
    columns: list[Column]
    primary_key: list[str]
    relkind: str = "r"

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)
