"""`appliance schema lint`: one PostgreSQL schema per finding, asserted in text and JSON."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.config import load
from appliance.schema import lint_report

TEST_FLAG = "ALTER TABLE t ADD COLUMN is_test boolean NOT NULL DEFAULT false;" + (
    "UPDATE t SET is_test = true WHERE id <= 3"
)
# A table that answers every question well: no findings.
PERFECT = """
CREATE TABLE t (
    id int PRIMARY KEY,
    status text NOT NULL CHECK (status IN ('new', 'paid')),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE INDEX t_updated_at_idx ON t (updated_at);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql
    AS $$BEGIN NEW.updated_at := now(); RETURN NEW; END$$;
CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();
INSERT INTO t (id, status)
    SELECT g, CASE WHEN g % 2 = 0 THEN 'new' ELSE 'paid' END FROM generate_series(1, 100) g;
"""

# (case, change to PERFECT, check, what the finding's detail says)
FINDINGS = [
    ("no_primary_key", "ALTER TABLE t DROP CONSTRAINT t_pkey", "primary_key", "no primary key"),
    (
        "no_cursor",
        "ALTER TABLE t RENAME COLUMN updated_at TO stamp",
        "cursor",
        "No column such as updated_at",
    ),
    (
        "cursor_nullable_unindexed",
        "ALTER TABLE t ALTER updated_at DROP NOT NULL; DROP INDEX t_updated_at_idx",
        "cursor",
        "it allows NULL and no index starts with it",
    ),
    ("cursor_not_maintained", "DROP TRIGGER t_touch ON t", "cursor_maintained", "No trigger on the table"),
    (
        "naive_timestamp",
        "ALTER TABLE t ADD COLUMN placed timestamp",
        "time_zones",
        "placed: timestamp without",
    ),
    (
        "hard_deletes",
        "ALTER TABLE t DROP COLUMN deleted_at",
        "deletes",
        "a deleted row is gone (about 100 rows)",
    ),
    (
        "json_keys",
        "ALTER TABLE t ADD COLUMN payload jsonb;"
        "UPDATE t SET payload = jsonb_build_object('sku', id, 'qty', 1) WHERE id <= 40;"
        "UPDATE t SET payload = '{\"sku\": 1}' WHERE id > 90",
        "json",
        "sku (50), qty (40)",
    ),
    (
        "status_without_list",
        "ALTER TABLE t DROP CONSTRAINT t_status_check; UPDATE t SET status = 'void' WHERE id = 7",
        "status",
        "3 distinct values in the sample",
    ),
    (
        "reference_without_fk",
        "ALTER TABLE t ADD COLUMN customer_id int",
        "foreign_key",
        "customer_id looks like a reference",
    ),
    (
        "test_marker",
        TEST_FLAG,
        "test_data",
        "is_test (3 of 100 sampled rows marked)",
    ),
    (
        "test_email",
        "ALTER TABLE t ADD COLUMN email text; UPDATE t SET email = 'u' || id || "
        "CASE WHEN id <= 5 THEN '@qa.test' ELSE '@gmail.com' END",
        "test_data",
        "email (5 sampled rows at qa.test)",
    ),
]


def run(cfg, *args):
    return CliRunner().invoke(main, ["--config", str(cfg), "schema", "lint", *args])


@pytest.fixture
def lint_config(sales, make_config):
    def make(sql: str, table: dict | None = None, tunnel: bool = False):
        sales.sql(PERFECT + ";" + sql + "; ANALYZE t", db="sales")
        return make_config([table or {"name": "public.t"}], tunnel=tunnel)

    return make


def test_lint_a_table_that_answers_everything_has_no_findings(lint_config):
    cfg = lint_config("")
    result = run(cfg, "--format", "json")
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.output)["tables"]
    assert report["findings"] == 0 and report["rows"] == 100
    assert {c["check"] for c in report["checks"]} >= {
        "primary_key",
        "cursor",
        "time_zones",
        "deletes",
        "status",
    }


@pytest.mark.parametrize(("case", "sql", "check", "detail"), FINDINGS, ids=[f[0] for f in FINDINGS])
def test_lint_finding(lint_config, case, sql, check, detail):
    cfg = lint_config(sql)
    result = run(cfg, "--format", "json")
    assert result.exit_code == 1, result.output
    (report,) = json.loads(result.output)["tables"]
    found = [c for c in report["checks"] if c["check"] == check and not c["ok"]]
    assert len(found) == 1, report["checks"]
    assert detail in found[0]["detail"] and found[0]["why"] and found[0]["ask"].endswith("?")
    others = [c["check"] for c in report["checks"] if not c["ok"] and c["check"] != check]
    assert others == [], f"{case} should raise only its own finding"
    text = run(cfg).output
    assert f"FINDING {found[0]['title']}: " in text and detail in text and "ask: " in text


@pytest.mark.parametrize(
    ("sql", "listed_by"),
    [
        (
            "ALTER TABLE t DROP CONSTRAINT t_status_check; CREATE TYPE st AS ENUM ('new', 'paid');"
            "ALTER TABLE t ALTER status TYPE st USING status::st",
            "the enum type st (new, paid)",
        ),
        (
            "ALTER TABLE t DROP CONSTRAINT t_status_check; CREATE TABLE statuses (code text PRIMARY KEY);"
            "INSERT INTO statuses VALUES ('new'), ('paid');"
            "ALTER TABLE t ADD FOREIGN KEY (status) REFERENCES statuses",
            "a lookup table, statuses(code)",
        ),
        ("", "a CHECK constraint: CHECK ((status = ANY (ARRAY['new'::text, 'paid'::text])))"),
    ],
)
def test_lint_status_codes_listed_by_enum_lookup_or_check_pass(lint_config, sql, listed_by):
    result = run(lint_config(sql), "--format", "json")
    (report,) = json.loads(result.output)["tables"]
    (status,) = [c for c in report["checks"] if c["check"] == "status"]
    assert status["ok"] and listed_by in status["detail"] and "new (50)" in status["detail"]


def test_lint_test_data_filtered_by_where_passes(lint_config):
    sql = TEST_FLAG
    cfg = lint_config(sql, {"name": "public.t", "where": "NOT is_test"})
    result = run(cfg, "--format", "json")
    assert result.exit_code == 0, result.output
    (check,) = [c for c in json.loads(result.output)["tables"][0]["checks"] if c["check"] == "test_data"]
    assert check["ok"] and "filtered by where = NOT is_test" in check["detail"]


def test_lint_markdown_through_the_tunnel_any_table_and_kept_for_the_page(lint_config, sales):
    sales.sql("CREATE TABLE other (v text)", db="sales")
    cfg = lint_config("ALTER TABLE t DROP COLUMN deleted_at", tunnel=True)
    result = run(cfg, "other", "--format", "markdown")  # not configured: checked all the same
    assert result.exit_code == 1, result.output
    assert "## public.other" in result.output and "1. **No primary key.**" in result.output
    assert "*Question:*" in result.output and "*Why it matters:*" in result.output
    result = run(cfg, "--format", "markdown")
    assert "## public.t" in result.output and "**Hard deletes to expect.**" in result.output
    kept = lint_report.load(load(cfg).state_dir, "public.t")
    assert kept is not None and [c.check for c in kept.findings] == ["deletes"]


def test_lint_cannot_check_exits_3(lint_config, sales, make_config):
    cfg = lint_config("")
    result = run(cfg, "public.nope")
    assert result.exit_code == 3 and "Table not found" in result.output
    down = make_config([{"name": "public.t"}], tunnel=False, source={"port": 1})
    result = run(down)
    assert result.exit_code == 3 and "cannot check" in result.output
