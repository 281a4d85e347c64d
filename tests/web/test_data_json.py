"""JSON pages written a column at a time: character for character json.dumps of the rows as dicts."""

from __future__ import annotations

import json
import math
import sqlite3

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.schema.shape import Column
from appliance.sync.replica import Replica, TableState
from appliance.web import create_app
from appliance.web.data_fast import ONE_PAGE, OnePage
from appliance.web.data_rows import dumps, json_objects, json_rows

HOSTILE_NAMES = ["id", 'we"ird', "back\\slash", "%s %d %%", "ünï €", "line\nbreak", "\x00\x1f", "\u2028"]
HOSTILE_TEXT = [
    "",
    '"',
    "\\",
    '\\"',
    '","',
    ', "x": 1}',
    "null",
    "%s%%",
    "\x00\x01\x1f\x7f\t\r\n\b\f",
    "\u2028\u2029",
    "ünïcödé €",
    "\U0001f600",
    "\ud800 lone \udfff",  # SQLite never returns these (its text is UTF-8); json.dumps passes them
]
HOSTILE_FLOATS = [0.0, -0.0, 1e-320, 5e-324, 1e16, 1e22, 1e-5, 0.1, 1 / 7, -2.5e-7, 1.7976931348623157e308]
HOSTILE_INTS = [0, -1, 2**63 - 1, -(2**63), 2**200, -(10**300)]
VALUES = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.binary(max_size=20),
    st.sampled_from(HOSTILE_TEXT + HOSTILE_FLOATS + HOSTILE_INTS + [math.inf, -math.inf, True]),
)


def expected(names: list[str], rows: list[tuple]) -> str:
    return dumps(json_rows(names, rows))


@st.composite
def pages(draw) -> tuple[list[str], list[tuple]]:
    """A page: each column of one kind, of a few kinds, or of anything (SQLite types by value)."""
    names = draw(st.lists(st.text() | st.sampled_from(HOSTILE_NAMES), min_size=1, max_size=6, unique=True))
    height = draw(st.integers(0, 12))
    columns = []
    for _ in names:
        kinds = draw(
            st.sampled_from(
                [
                    st.text(),
                    st.text() | st.none(),
                    st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.none(),
                    st.floats(allow_nan=False, allow_infinity=False) | st.none(),
                    st.floats() | st.integers() | st.none(),
                    st.binary() | st.none(),
                    VALUES,
                ]
            )
        )
        columns.append(draw(st.lists(kinds, min_size=height, max_size=height)))
    rows = list(zip(*columns, strict=True)) if height else []
    if rows and draw(st.booleans()):
        rows = [(*r, draw(st.integers())) for r in rows]  # a rowid after the data, for paging
    return names, rows


@settings(max_examples=400, deadline=None)
@given(page=pages())
def test_data_json_objects_equal_json_dumps_of_the_dicts(page):
    names, rows = page
    assert json_objects(names, rows) == expected(names, rows)


@pytest.mark.parametrize(
    "column",
    [
        HOSTILE_TEXT,
        [*HOSTILE_TEXT, None],
        HOSTILE_FLOATS,
        [*HOSTILE_FLOATS, None],
        [*HOSTILE_FLOATS, math.inf],
        [-math.inf, None, 1.5],
        [math.nan, 0.5],
        [1e308, 1e308],  # their sum overflows: the slow way, the same text
        [*HOSTILE_INTS, None],
        [*HOSTILE_INTS, 0.5],  # a float with ints too large for one
        [b"", b"\x00\xff", None, "text", 1, 1.5, True],
    ],
)
def test_data_json_objects_write_each_kind_of_column_as_json_does(column):
    names = ["a", 'we"ird %s']
    rows = [(v, i) for i, v in enumerate(column)]
    assert json_objects(names, rows) == expected(names, rows)
    assert json_objects(names[::-1], [r[::-1] for r in rows]) == expected(
        names[::-1], [r[::-1] for r in rows]
    )


def test_data_json_objects_take_the_dict_way_for_what_dicts_do_differently():
    # A name twice (free SQL): the dict keeps the first place and the last value.
    assert json_objects(["a", "a"], [(1, 2)]) == expected(["a", "a"], [(1, 2)]) == '[{"a": 2}]'
    assert json_objects([], [(), ()]) == "[{}, {}]"
    assert json_objects(["a"], []) == "[]"
    assert json_objects(["a", "b"], [(1,), (1, 2)]) == expected(["a", "b"], [(1,), (1, 2)])


def test_data_json_objects_of_infinity_as_before():
    # SQLite keeps +-Infinity in a REAL (NaN becomes NULL); json.dumps wrote them as
    # Infinity and -Infinity, and so does the column encoder.
    assert json_objects(["w"], [(math.inf,), (-math.inf,), (None,)]) == (
        '[{"w": Infinity}, {"w": -Infinity}, {"w": null}]'
    )


def _replica(path, columns: list[Column], rows: list[tuple]) -> None:
    with Replica(f"sqlite:///{path}") as replica:
        with replica.transaction():
            replica.create_table("hostile", columns, ["id"])
            replica.insert("hostile", [c.name for c in columns], rows)
            replica.save_state(
                TableState(
                    "hostile", "public.hostile", "incremental", None, None, None, None,
                    [[c.name, c.sql_type, c.kind] for c in columns], ["id"], None, len(rows), len(rows),
                )
            )  # fmt: skip


def test_data_json_page_of_hostile_values_in_sqlite_is_json_dumps_of_its_rows(make_config, tmp_path):
    columns = [
        Column("id", "integer", "integer", False),
        Column('we"ird %s ünï', "text", "text"),
        Column("total", "numeric(12,2)", "numeric"),
        Column("weight", "double precision", "float"),
        Column("photo", "bytea", "bytea"),
        Column("any", "bytea", "bytea"),  # BLOB affinity: each value keeps its type
    ]
    text = [t for t in HOSTILE_TEXT if "\ud800" not in t]  # SQLite stores UTF-8: no lone surrogates
    floats = [*HOSTILE_FLOATS, math.inf, -math.inf, math.nan]  # NaN is stored as NULL
    anything = [None, 7, 2.5, "x", b"\x01", -0.0, "ü"]  # SQLite keeps each value's own type
    rows = [
        (i, text[i % len(text)], f"{i * 1.25:.2f}", floats[i % len(floats)], b"\x00\xff" * (i % 3) or None,
         anything[i % len(anything)])
        for i in range(1, 60)
    ]  # fmt: skip
    path = tmp_path / "state" / "replica.sqlite"  # the config's default replica
    path.parent.mkdir()
    _replica(path, columns, rows)
    config = make_config(
        tables=[{"name": "public.hostile", "replica_name": "hostile"}], web={"data_api_open": True}
    )
    client = create_app(config).test_client()
    with sqlite3.connect(path) as db:
        stored = db.execute("SELECT * FROM hostile ORDER BY id").fetchall()
    assert {type(r[3]) for r in stored} == {float, type(None)} and math.inf in {r[3] for r in stored}
    assert {type(r[5]) for r in stored} == {type(None), int, float, str, bytes}
    names = [c.name for c in columns]
    url, seen = "/api/data/hostile.json?_size=17", []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = json.loads(response.data)  # Python's json reads Infinity back
        got = response.data.decode()
        chunk = stored[len(seen) : len(seen) + len(page["rows"])]
        assert got == '{"rows": ' + expected(names, chunk) + ', "next": ' + dumps(page["next"]) + "}\n"
        assert got == dumps({"rows": json_rows(names, chunk), "next": page["next"]}) + "\n"
        seen += chunk
        url = page["next"]
    assert seen == stored
    sql = client.get("/api/data/sql.json", query_string={"sql": "SELECT * FROM hostile ORDER BY id"})
    doc = {"columns": names, "rows": json_rows(names, stored), "truncated": False, "next": None}
    assert sql.status_code == 200 and sql.data.decode() == dumps(doc) + "\n"
    # Free SQL may name a column twice: the object keeps one, as a dict does.
    twice = client.get("/api/data/sql.json", query_string={"sql": "SELECT 1 AS a, 2 AS a"})
    assert twice.get_json()["rows"] == [{"a": 2}]


def test_data_json_pages_are_answered_while_a_slow_page_holds_the_reading_lock(make_config, tmp_path):
    path = tmp_path / "state" / "replica.sqlite"
    path.parent.mkdir()
    columns = [Column("id", "integer", "integer", False), Column("name", "text", "text")]
    _replica(path, columns, [(i, f"row {i}") for i in range(1, 11)])
    config = make_config(
        tables=[{"name": "public.hostile", "replica_name": "hostile"}], web={"data_api_open": True}
    )
    client = create_app(config).test_client()
    lock = OnePage(wait=0.05)
    assert lock.acquire()  # a slow page reading
    assert lock.acquire() is False  # the next one waited its turn, then reads beside it
    lock._since -= 1  # the holder has read for a second: the next does not wait at all
    assert lock.acquire() is False
    lock.release()
    assert lock.acquire() is True
    lock.release()
    assert ONE_PAGE.acquire()  # the server's own, held as a slow filter would hold it
    try:
        response = client.get("/api/data/hostile.json?_size=3&id__gt=2")
    finally:
        ONE_PAGE.release()
    assert response.status_code == 200 and [r["id"] for r in response.get_json()["rows"]] == [3, 4, 5]
