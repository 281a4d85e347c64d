"""One table's failure is that table's: the others sync, the source stays up, the agent lives."""

from __future__ import annotations

from support.harness import Harness

from appliance.config import load
from appliance.health import status as health
from appliance.sync.agent import run_once


def test_table_errors_a_view_that_raises_fails_only_its_table(sales, make_config):
    sales.sql(
        "CREATE TABLE good (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO good (id) VALUES (1), (2);"
        "CREATE FUNCTION boom() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'boom'; END $$;"
        "CREATE VIEW bad AS SELECT boom() AS id, now() AS updated_at;"
        "GRANT SELECT ON bad TO PUBLIC",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.bad", "primary_key": ["id"]}, {"name": "public.good", "cursor": "updated_at"}]
    )
    with Harness(cfg) as h:
        result = run_once(h.config, h.link, h.replica, h.store)
        doc = health.build(h.config, h.store)
        runs = h.store.runs(1)
        good = h.rows("good", "id")
    assert result.error is None and not result.ok
    bad = next(t for t in result.tables if t.name == "public.bad")
    assert "boom" in bad.error and "P0001" in bad.error
    assert [r["id"] for r in good] == [1, 2]  # the table after it synced
    assert (
        runs[0]["summary"].startswith("pass with errors: 2 tables")
        and "public.bad +0/-0 ERROR" in runs[0]["summary"]
    )
    assert doc["source"]["database"] == "up" and doc["state"] == "outage"
    assert doc["reason"].startswith("public.bad: the source failed a query (P0001): boom")
    assert {t["name"]: t["state"] for t in doc["tables"]} == {"public.bad": "outage", "public.good": "ok"}


def test_table_errors_a_statement_timeout_fails_only_its_table(sales, make_config):
    sales.sql(
        "CREATE TABLE good (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO good (id) VALUES (1);"
        "CREATE FUNCTION slow() RETURNS int LANGUAGE sql AS $$ SELECT 1 FROM pg_sleep(3) $$;"
        "CREATE VIEW sleepy AS SELECT slow() AS id;"
        "GRANT SELECT ON sleepy TO PUBLIC",
        db="sales",
    )
    cfg = make_config(
        [{"name": "public.sleepy", "primary_key": ["id"]}, {"name": "public.good", "cursor": "updated_at"}],
        source={"statement_timeout": "1s"},
    )
    with Harness(cfg) as h:
        result = run_once(h.config, h.link, h.replica, h.store)
        good = h.rows("good", "id")
    sleepy = next(t for t in result.tables if t.name == "public.sleepy")
    assert result.error is None and "statement_timeout" in sleepy.error
    assert [r["id"] for r in good] == [1]


def test_table_errors_a_damaged_replica_is_an_outage_and_not_written(sales, make_config, tmp_path):
    import subprocess
    import sys

    from appliance.health.store import StateStore

    sales.sql(
        "CREATE TABLE good (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO good (id, note) SELECT g, repeat('x', 200) FROM generate_series(1, 3000) g",
        db="sales",
    )
    cfg = make_config([{"name": "public.good", "cursor": "updated_at"}])
    argv = [sys.executable, "-m", "appliance.cli", "--config", str(cfg), "sync", "--once"]
    assert subprocess.run(argv, capture_output=True, timeout=120).returncode == 0
    replica = tmp_path / "state" / "replica.sqlite"
    with open(replica, "r+b") as f:  # a failing card: a few pages in the middle turn to garbage
        f.seek(4096 * 3)
        f.write(b"\xff" * 4096 * 2)
    before = replica.read_bytes()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "is damaged" in done.stderr and "Traceback" not in done.stderr
    assert replica.read_bytes() == before  # nothing written on top of the damage
    with StateStore(tmp_path / "state", readonly=True) as store:
        doc = health.build(load(cfg), store)
    assert doc["state"] == "outage" and "damaged" in doc["reason"]
