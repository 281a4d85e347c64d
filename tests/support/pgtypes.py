"""A PostgreSQL table with a column of every type the appliance maps, and rows of edge cases.

Shared by the sync and reconcile tests (tests/test_sync.py, tests/test_reconcile.py).
"""

from __future__ import annotations

TYPES_DDL = """
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN positive_int AS integer CHECK (VALUE > 0);
CREATE TABLE everything (
    id bigint PRIMARY KEY,
    small smallint, normal integer, dom positive_int,
    price numeric(30, 10), ratio double precision,
    label text, code varchar(8), fixed char(4),
    flag boolean,
    at timestamptz, naive timestamp, day date, clock time, span interval,
    ident uuid, doc jsonb, raw_json json, tags text[], matrix integer[][],
    feeling mood, payload bytea, search tsvector,
    updated_at timestamptz NOT NULL DEFAULT now()
);
"""

TYPES_ROWS = """
INSERT INTO everything VALUES
 (1, -32768, 2147483647, 5, 12345678901234567890.0123456789, 0.1, 'plain', 'abc', 'ab',
  true, '2024-02-29 23:59:59.999999+05:30', '2024-01-01 00:00:00.000001', '2024-12-31',
  '13:45:00.5', '1 day 2 hours 3.5 seconds', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
  '{"b": [1, 2.50, null], "a": "x"}', '{"keep":  "spacing"}', ARRAY['a', 'b,c', 'd"e', NULL],
  '{{1,2},{3,4}}', 'happy', '\\x00ff10'::bytea, to_tsvector('simple', 'hello world'), now()),
 (2, NULL, NULL, NULL, 1.5000, 'NaN', E'tab\\there\\nnewline \\\\ back', NULL, NULL,
  false, 'infinity', NULL, NULL, NULL, '-3 months', NULL, 'null', NULL, '{}', NULL, NULL,
  '\\x'::bytea, NULL, now()),
 (3, 0, 0, 1, -0.0000000001, -1e300, '<script>"quote"</script>', '', '    ',
  NULL, '1970-01-01 00:00:00+00', '1999-12-31 23:59:59', '0001-01-01', '00:00', '0', NULL,
  '[]', '""', ARRAY[]::text[], NULL, 'sad', NULL, '', now());
"""
