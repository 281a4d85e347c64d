"""Facts for the readiness report, read from the source's catalog and a bounded sample.

Runs in the source's read-only session (``Source``): every statement is a catalog query
or a query over the first ``SAMPLE_ROWS`` rows of the table, each under the session's
``statement_timeout``, so checking a table of any size costs production little.
PostgreSQL only: the catalog queries have no generic form.
"""

from __future__ import annotations

import logging

from ..errors import QueryError, SourceError, SourceSchemaError
from ..schema.lint_facts import SAMPLE_ROWS, ForeignKey, Sampled, TableFacts
from ..schema.lint_rules import EMAIL_NAME, LOW_CARDINALITY, STATUS_NAME, TEST_MARKER
from .source import Source
from .typemap import quote_ident

log = logging.getLogger(__name__)

JSON_SAMPLE = 1000  # documents whose keys are counted
TEST_DOMAIN = r"(^|[.@])(test|testing|example|invalid|localhost|mailinator)([.]|$)|\+test@"

_CONSTRAINTS = """
SELECT c.contype, pg_get_constraintdef(c.oid),
       ARRAY(SELECT a.attname::text FROM unnest(c.conkey) k JOIN pg_attribute a
             ON a.attrelid = c.conrelid AND a.attnum = k),
       c.confrelid::regclass::text,
       ARRAY(SELECT a.attname::text FROM unnest(c.confkey) k JOIN pg_attribute a
             ON a.attrelid = c.confrelid AND a.attnum = k)
FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype IN ('c', 'f', 'u')
"""
_INDEXES = """
SELECT a.attname::text, i.indisunique,
       ARRAY(SELECT b.attname::text FROM unnest(i.indkey) k JOIN pg_attribute b
             ON b.attrelid = i.indrelid AND b.attnum = k)
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
WHERE i.indrelid = %s::regclass
"""
_TRIGGERS = "SELECT tgname::text FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal"
_ESTIMATE = "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass"


def qualified(name: str) -> str:
    """Return schema.table for a table name (a bare name means public)."""
    return name if "." in name else f"public.{name}"


def table_facts(source: Source, name: str) -> TableFacts:
    """Return what the catalog and a sample say about ``name`` (schema.table)."""
    if not source.is_postgres:
        raise SourceError("the readiness report reads PostgreSQL's catalog; this source is not PostgreSQL")
    name = qualified(name)
    shape = source.describe([name]).get(name)
    if shape is None:
        return TableFacts(name, exists=False)
    schema, table = name.split(".", 1)
    ident = f"{quote_ident(schema)}.{quote_ident(table)}"
    facts = TableFacts(name, True, shape.columns, shape.primary_key)
    _catalog(source, ident, facts)
    facts.rows = _estimate(source, ident)
    _sample(source, ident, facts)
    return facts


def _catalog(source: Source, ident: str, facts: TableFacts) -> None:
    for kind, definition, cols, ref, ref_cols in source.execute(_CONSTRAINTS, (ident,)):
        if kind == "c" and len(cols) == 1:
            facts.checks.setdefault(cols[0], []).append(definition)
        elif kind == "f":
            facts.foreign_keys.append(ForeignKey(list(cols), f"{ref}({', '.join(ref_cols)})"))
        elif kind == "u":
            facts.unique.append(list(cols))
    for first, unique, cols in source.execute(_INDEXES, (ident,)):
        facts.indexed_first.append(first)
        if unique:
            facts.unique.append(list(cols))
    facts.triggers = [r[0] for r in source.execute(_TRIGGERS, (ident,))]


def _estimate(source: Source, ident: str) -> int | None:
    rows = source.execute(_ESTIMATE, (ident,))
    estimate = int(rows[0][0]) if rows else -1
    if estimate >= 0 and not (estimate == 0 and source.execute(f"SELECT 1 FROM {ident} LIMIT 1")):
        return estimate
    # Never analysed: count, but never more than a million rows.
    return int(source.execute(f"SELECT count(*) FROM (SELECT 1 FROM {ident} LIMIT 1000000) s")[0][0])


def _sample(source: Source, ident: str, facts: TableFacts) -> None:
    """Fill ``facts.sampled``: distinct counts, common values, JSON keys, test markers."""
    sample = f"(SELECT * FROM {ident} LIMIT {SAMPLE_ROWS}) s"
    coded = [
        c for c in facts.columns if c.kind in ("text", "enum", "integer") and c.name not in facts.primary_key
    ]
    counts = ", ".join(f"count(DISTINCT {quote_ident(c.name)}::text)" for c in coded)
    row = source.execute(f"SELECT count(*){', ' + counts if counts else ''} FROM {sample}")[0]
    facts.sample_rows = int(row[0])
    for c, distinct in zip(coded, row[1:], strict=True):
        facts.sampled[c.name] = Sampled(distinct=int(distinct))
    for c in coded:
        s = facts.sampled[c.name]
        if s.distinct and (c.kind == "enum" or STATUS_NAME.search(c.name) or s.distinct <= LOW_CARDINALITY):
            col = quote_ident(c.name)
            s.values = [
                (str(v), int(n))
                for v, n in source.execute(
                    f"SELECT {col}::text, count(*) FROM {sample} WHERE {col} IS NOT NULL "
                    f"GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 21"
                )
            ]
    for c in facts.columns:
        col = quote_ident(c.name)
        if c.kind == "json":
            docs = f"(SELECT {col}::jsonb AS d FROM {ident} WHERE {col} IS NOT NULL LIMIT {JSON_SAMPLE}) s"
            try:
                keys = source.execute(
                    f"SELECT k, count(*) FROM {docs}, jsonb_object_keys(CASE WHEN jsonb_typeof(d) = 'object' "
                    f"THEN d ELSE '{{}}'::jsonb END) k GROUP BY k ORDER BY 2 DESC, 1 LIMIT 50"
                )
            except (
                QueryError,
                SourceSchemaError,
            ) as e:  # one document jsonb cannot read ("\u0000"): no keys, not no report
                log.warning("%s.%s: its JSON keys could not be sampled: %s", facts.name, c.name, e)
                keys = []
            facts.sampled.setdefault(c.name, Sampled()).json_keys = [(str(k), int(n)) for k, n in keys]
        elif TEST_MARKER.match(c.name):
            truthy = (
                f"{col}"
                if c.kind == "boolean"
                else f"{col} IS NOT NULL AND {col}::text NOT IN ('0', 'f', 'false', '')"
            )
            n = source.execute(f"SELECT count(*) FROM {sample} WHERE {truthy}")[0][0]
            facts.sampled.setdefault(c.name, Sampled()).test_rows = int(n)
        elif EMAIL_NAME.search(c.name) and c.kind == "text":
            found = source.execute(
                f"SELECT lower(split_part({col}, '@', 2)), count(*) FROM {sample} "
                f"WHERE {col} ~* %s GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
                (TEST_DOMAIN,),
            )
            s = facts.sampled.setdefault(c.name, Sampled())
            s.test_rows = sum(int(n) for _, n in found)
            s.test_domains = [str(d) for d, _ in found]
