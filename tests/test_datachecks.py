"""Data checks on hostile values: one row, however deep or strange, never stops the sync."""

from __future__ import annotations

from support.harness import Harness

from appliance.schema.datachecks import EXAMPLE_LIMIT, example, json_keys

DEPTH = 3000  # deeper than Python's recursion limit: json.loads raises RecursionError


def deep(depth: int = DEPTH) -> str:
    return "[" * depth + "]" * depth


def test_datachecks_json_keys_of_a_document_nested_past_the_recursion_limit():
    doc = '{"a": ' + deep() + ', "b\\"x": {"c": [1, "d"]}, "e": "},{", "f": null}'
    assert json_keys(doc) == {"a", 'b"x', "e", "f"}


def test_datachecks_json_keys_of_deep_arrays_and_broken_text_are_none():
    assert json_keys('["x", "y", ' + deep() + "]") == set()
    assert json_keys('{"a": ' + deep() + ', "b' + "\\") == set()  # cut off mid-key: no guess
    assert json_keys("not json") == set() and json_keys(None) == set()
    assert json_keys('{"k": 1, "l": {"m": 2}}') == {"k", "l"}


def test_datachecks_example_escapes_control_characters_and_stays_short():
    text = example("a\nb\x00c\x1b[31m" + "x" * 10_000_000)
    assert text.startswith("a\\nb\\x00c\\x1b[31m") and len(text) == EXAMPLE_LIMIT
    assert "\n" not in text and "\x00" not in text


def test_datachecks_a_jsonb_value_nested_3000_deep_does_not_stop_the_sync(sales, make_config):
    nested = '{"kind": "deep", "payload": ' + deep() + "}"
    sales.sql(
        "CREATE TABLE events (id int PRIMARY KEY, doc jsonb, updated_at timestamptz NOT NULL DEFAULT now());"
        "CREATE TABLE after_it (id int PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now());"
        """INSERT INTO events (id, doc) VALUES (1, '{"kind": "plain"}');"""
        "INSERT INTO after_it (id) VALUES (1)",
        db="sales",
    )
    cfg = make_config(
        [
            {"name": "public.events", "cursor": "updated_at"},
            {"name": "public.after_it", "cursor": "updated_at"},
        ]
    )
    with Harness(cfg) as h:
        h.sync()  # the contract records the keys seen: {"kind"}
        sales.sql(f"INSERT INTO events (id, doc) VALUES (2, '{nested}')", db="sales")
        sales.sql("INSERT INTO after_it (id) VALUES (2)", db="sales")
        h.sync()  # raises if the pass failed
        assert [r["id"] for r in h.rows("events", "id")] == [1, 2]
        assert [r["id"] for r in h.rows("after_it", "id")] == [1, 2]  # the later table synced too
        doc = h.rows("events", "id")[1]["doc"]
        assert doc.startswith('{"kind": "deep", "payload": [[') and doc.count("[") == DEPTH
        violations = h.store.get("violations:public.events", [])
    assert [(v["kind"], v["column"], v["value"]) for v in violations] == [
        ("json_keys_changed", "doc", "payload")
    ]
