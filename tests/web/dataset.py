"""A replica filled by a real sync (PostgreSQL through sshd) for the data API's tests.

Schema ``dataapi`` of the ``sales`` database (the ``sales`` fixture empties only
``public`` and ``shop``), synced once per test module; each test builds the app it needs
over the same replica and state store.
"""

from __future__ import annotations

import os
from pathlib import Path

from support.harness import Harness
from support.tomlconf import password_file, sections, write_config

from appliance.config import Config, load

ROWS = 250
HOSTILE = 'we"ird <b>col</b>'
SCHEMA = f"""
DROP SCHEMA IF EXISTS dataapi CASCADE;
CREATE SCHEMA dataapi;
CREATE TABLE dataapi.orders (
    id int PRIMARY KEY,
    customer text,
    total numeric(12,2) NOT NULL,
    status text,
    note text,
    email text,
    ssn text,
    payload jsonb,
    photo bytea,
    weight double precision,
    "{HOSTILE.replace('"', '""')}" text,
    updated_at timestamptz NOT NULL DEFAULT '2024-06-01T00:00:00Z'
);
INSERT INTO dataapi.orders
    (id, customer, total, status, note, email, ssn, payload, photo, weight, "{HOSTILE.replace('"', '""')}")
SELECT g, 'customer ' || (g % 7), (g * 1.25)::numeric(12,2),
       (ARRAY['new','paid','shipped'])[1 + g % 3],
       CASE WHEN g % 10 = 0 THEN NULL WHEN g = 3 THEN '<script>alert(1)</script>'
            WHEN g = 4 THEN E'a "quoted", text\r\nover two lines' ELSE 'note ' || g END,
       'c' || g || '@shop.example', '123-45-' || g, jsonb_build_object('n', g, 'tag', 'x'),
       CASE WHEN g = 1 THEN '\\x00ff10'::bytea END, CASE WHEN g % 9 <> 0 THEN g / 7.0 END,
       CASE WHEN g = 2 THEN repeat('long ', 100) ELSE 'v' || g END
FROM generate_series(1, {ROWS}) g;
CREATE TABLE dataapi.nokey (label text, n int);
INSERT INTO dataapi.nokey SELECT 'label ' || g, g % 4 FROM generate_series(1, 30) g;
"""
TABLES = [
    {
        "name": "dataapi.orders",
        "replica_name": "orders",
        "cursor": "updated_at",
        "exclude_columns": ["ssn"],
        "mask_columns": ["email"],
    },
    {"name": "dataapi.nokey", "replica_name": "nokey"},
]
TOKEN = "data-T0ken-S3CRET-value"


def build(pg, sshd, root: Path) -> Path:
    """Create the source tables, write a config, run one real sync; return the config path."""
    pg.sql(SCHEMA, db="sales")
    os.chmod(sshd.client_key, 0o600)
    pw = password_file(root / "source.password")
    token = root / "web.token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o600)
    conf = sections(root / "state", pg, pw, sshd, sync={"interval": "1s", "batch_size": 100})
    path = write_config(root / "appliance.toml", conf, TABLES)
    with Harness(path) as h:
        h.sync()
    return path


def config(path: Path, *, token: bool = False, open_: bool = False) -> Config:
    """Return the config with the data API closed (default), token-protected or open."""
    cfg = load(path, environ={"DATA_TOKEN": TOKEN} if token else {})
    from dataclasses import replace

    web = replace(cfg.web, api_token_env="DATA_TOKEN" if token else "", data_api_open=open_)
    return replace(cfg, web=web)
