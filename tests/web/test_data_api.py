"""The data API over a replica filled by a real sync: posture, filters, pages, CSV, SQL."""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from appliance.web import create_app
from appliance.web.data import SQL_MAX_ROWS, SQL_TIME_LIMIT
from appliance.web.server import PageServer
from appliance.web.throttle import LIMIT, WINDOW, Throttle

from . import dataset
from .dataset import HOSTILE, ROWS, TOKEN

ROUTES = ["/api/data/", "/api/data/orders.json", "/api/data/orders.csv", "/api/data/sql.json?sql=select+1"]


@pytest.fixture(scope="module")
def cfg_path(pg, sshd, tmp_path_factory):
    return dataset.build(pg, sshd, tmp_path_factory.mktemp("dataapi"))


@pytest.fixture(scope="module")
def client(cfg_path):
    return create_app(dataset.config(cfg_path, open_=True)).test_client()


def get(client, url: str) -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return response.get_json()


def walk(client, url: str) -> list[dict]:
    """Return every row by following the ``next`` links."""
    rows: list[dict] = []
    while url:
        doc = get(client, url)
        rows += doc["rows"]
        url = doc["next"] and _local(doc["next"])
    return rows


def _local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def source_rows(pg) -> list[dict]:
    cur = pg.sql("SELECT id, customer, total::text, status, note FROM dataapi.orders ORDER BY id", db="sales")
    return [dict(zip(("id", "customer", "total", "status", "note"), r, strict=True)) for r in cur]


# -- posture -------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
def test_data_closed_by_default_answers_403_saying_how_to_open(cfg_path, route):
    client = create_app(dataset.config(cfg_path)).test_client()
    response = client.get(route)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert "api_token_file" in error and "data_api_open = true" in error


def test_data_token_required_as_bearer_or_basic_and_never_echoed(cfg_path, caplog):
    caplog.set_level(logging.DEBUG)
    client = create_app(dataset.config(cfg_path, token=True)).test_client()
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    wrong = base64.b64encode(b"anyone:nope").decode()
    for route in ROUTES:
        client.application.extensions["appliance"].throttle = Throttle()  # 4 wrong ones per route
        missing = client.get(route)
        assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Basic")
        for header in ("Bearer nope", f"Basic {wrong}", "Basic !!!", TOKEN):
            assert client.get(route, headers={"Authorization": header}).status_code == 401, header
        for header in (f"Bearer {TOKEN}", f"Basic {basic}"):
            ok = client.get(route, headers={"Authorization": header})
            assert ok.status_code == 200, (route, header)
            assert TOKEN.encode() not in ok.data
        assert TOKEN.encode() not in missing.data
    client.application.extensions["appliance"].throttle = Throttle()
    for page in ("/", "/tables/dataapi.orders", "/api/status", "/metrics", "/data/", "/data/orders"):
        body = client.get(page, headers={"Authorization": "Bearer nope"}).data
        assert TOKEN.encode() not in body, page
    assert TOKEN not in caplog.text


@pytest.mark.parametrize(
    ("token", "open_", "word"), [(False, False, "closed"), (True, False, "token"), (True, True, "open")]
)
def test_data_status_page_says_the_posture(cfg_path, token, open_, word):
    client = create_app(dataset.config(cfg_path, token=token, open_=open_)).test_client()
    page = client.get("/tables/dataapi.orders").text
    assert f'id="data-api" data-posture="{word}"' in page


# -- listing -------------------------------------------------------------------------------


def test_data_index_lists_tables_with_columns_types_and_health(client):
    doc = get(client, "/api/data/")
    tables = {t["name"]: t for t in doc["tables"]}
    assert set(tables) == {"orders", "nokey"}
    orders = tables["orders"]
    assert orders["source"] == "dataapi.orders" and orders["rows"] == ROWS and orders["state"] == "ok"
    assert orders["last_sync"] and orders["lag_seconds"] is not None
    cols = {c["name"]: c for c in orders["columns"]}
    assert "ssn" not in cols and "_appliance_hash" not in cols
    assert cols["total"]["type"] == "TEXT" and cols["total"]["source_type"] == "numeric(12,2)"
    assert cols["id"]["type"] == "INTEGER" and cols["email"]["masked"] and not cols["id"]["masked"]
    assert orders["json"].endswith("/api/data/orders.json")


# -- rows, pages, filters, sorting -----------------------------------------------------------


def test_data_pages_cover_every_row_once_in_key_order(client, pg):
    first = get(client, "/api/data/orders.json")
    assert len(first["rows"]) == 100 and first["next"]
    # HEAD goes through Flask's route, GET through the fast path (data_fast): same headers.
    head = client.head("/api/data/orders.json")
    assert head.status_code == 200 and head.mimetype == "application/json"
    rows = walk(client, "/api/data/orders.json?_size=33")
    assert [r["id"] for r in rows] == list(range(1, ROWS + 1))
    expected = source_rows(pg)
    assert [{k: r[k] for k in ("id", "customer", "total", "status", "note")} for r in rows] == expected


def test_data_json_types_excluded_and_masked_columns(client, pg):
    rows = {r["id"]: r for r in walk(client, "/api/data/orders.json?_size=1000")}
    one = rows[1]
    assert one["total"] == "1.25"  # exact numeric stays text
    assert one["photo"] == {"$base64": True, "encoded": base64.b64encode(b"\x00\xff\x10").decode()}
    assert json.loads(one["payload"]) == {"n": 1, "tag": "x"}
    assert "ssn" not in one and "_appliance_hash" not in one
    assert one["email"] and one["email"] != "c1@shop.example" and "@" not in one["email"]
    assert rows[2][HOSTILE] == "long " * 100 and rows[3]["note"] == "<script>alert(1)</script>"


def _ids(client, query: str) -> list[int]:
    return [r["id"] for r in walk(client, f"/api/data/orders.json?_size=1000&{query}")]


ALL = range(1, ROWS + 1)


def _note(i):
    special = {3: "<script>alert(1)</script>", 4: 'a "quoted", text\r\nover two lines'}
    return None if i % 10 == 0 else special.get(i, f"note {i}")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=paid", [i for i in ALL if i % 3 == 1]),
        ("status__ne=paid", [i for i in ALL if i % 3 != 1]),
        ("id__gt=240", list(range(241, ROWS + 1))),
        ("id__gte=240", list(range(240, ROWS + 1))),
        ("id__lt=4", [1, 2, 3]),
        ("id__lte=4", [1, 2, 3, 4]),
        ("id__in=5,7,999", [5, 7]),
        ("note__isnull=1", [i for i in ALL if i % 10 == 0]),
        ("note__isnull=0", [i for i in ALL if i % 10]),
        ("total__gt=300", [i for i in ALL if i * 1.25 > 300]),  # numeric text compares as a number
        ("total__lte=10.00", [i for i in ALL if i * 1.25 <= 10]),
        ("customer=customer+3&status=new", [i for i in ALL if i % 7 == 3 and i % 3 == 0]),
        (f"{HOSTILE}=v9".replace(" ", "+").replace('"', "%22").replace("<", "%3C").replace(">", "%3E"), [9]),
        ("note=x'+OR+1=1--", []),
    ],
)
def test_data_filters(client, query, expected):
    assert _ids(client, query) == expected


@pytest.mark.parametrize("size", [7, 1000])
@pytest.mark.parametrize(("param", "reverse"), [("_sort", False), ("_sort_desc", True)])
def test_data_sort_with_nulls_pages_without_skip_or_repeat(client, size, param, reverse):
    rows = walk(client, f"/api/data/orders.json?{param}=note&_size={size}")
    ids = [r["id"] for r in rows]
    assert sorted(ids) == list(ALL)
    # SQLite's order: NULLs first ascending, last descending; ties broken by the key.
    key = sorted(ALL, key=lambda i: (_note(i) is not None, _note(i) or "", i))
    assert ids == (key[::-1] if reverse else key)


@pytest.mark.parametrize("param", ["_sort", "_sort_desc"])
def test_data_sort_by_exact_numeric_text_orders_by_value(client, param):
    ids = [r["id"] for r in walk(client, f"/api/data/orders.json?{param}=total&_size=9")]
    assert ids == (list(ALL)[::-1] if param == "_sort_desc" else list(ALL))


def test_data_table_without_a_key_pages_by_rowid(client):
    rows = walk(client, "/api/data/nokey.json?_size=2&n=1")
    labels = [r["label"] for r in rows]
    assert sorted(labels) == sorted(f"label {g}" for g in range(1, 31) if g % 4 == 1)
    assert all(set(r) == {"label", "n"} for r in rows)


def _forged(token: bytes) -> str:
    return base64.urlsafe_b64encode(token).decode().rstrip("=")


@pytest.mark.parametrize(
    "query",
    [
        "nope=1",
        "id__like=1",
        "_sort=nope",
        "_size=0",
        "_size=1001",
        "_size=x",
        "_size=%C2%B2",  # a superscript two: a digit to str.isdigit(), not to int()
        "_next=garbage!",
        "_next=W3siaGV4IjogInp6In1d",  # [{"hex": "zz"}]
        "_next=W1sxXV0",  # [[1]]
        "_next=" + _forged(b"[99999999999999999999999]"),  # beyond SQLite's 64-bit integers
        "_next=" + _forged(b"[" * 100_000),  # deeper than Python's recursion limit
        "note__isnull=2",
    ],
)
def test_data_bad_requests_are_400_and_the_page_goes_on(client, query):
    response = client.get(f"/api/data/orders.json?{query}")
    assert response.status_code == 400 and response.get_json()["error"]
    assert client.get("/api/data/orders.json?_size=1").status_code == 200


@pytest.mark.parametrize(
    "route",
    ["/api/data/orders.json", "/api/data/orders.csv", "/api/data/sql.json?sql=select+1", "/data/orders"],
)
def test_data_before_the_first_sync_says_so_without_the_path(make_config, caplog, route):
    config = make_config(web={"data_api_open": True})  # the agent has not written a replica yet
    caplog.set_level(logging.INFO, logger="appliance.web")
    response = create_app(config).test_client().get(route)
    assert response.status_code == 503 and "not" in response.text and "synced" in response.text
    assert str(config.state_dir) not in response.text and "replica.sqlite" not in response.text
    assert str(config.state_dir) in caplog.text  # the full text stays in the journal


def test_data_unknown_and_bookkeeping_tables_are_404(client):
    for name in ("nope.json", "_appliance_tables.json", "orders.xml", "orders__history.json"):
        assert client.get(f"/api/data/{name}").status_code == 404, name


# -- CSV -------------------------------------------------------------------------------------


def test_data_csv_round_trips_through_the_csv_module(client):
    response = client.get("/api/data/orders.csv?id__lte=40")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    parsed = list(csv.DictReader(io.StringIO(response.data.decode())))
    expected = walk(client, "/api/data/orders.json?id__lte=40&_size=1000")
    assert expected[3]["note"] == 'a "quoted", text\r\nover two lines' and expected[0]["photo"]
    assert isinstance(expected[1]["weight"], float) and expected[8]["weight"] is None
    assert len(parsed) == len(expected) > 0
    for got, want in zip(parsed, expected, strict=True):
        assert set(got) == set(want)
        for k, v in want.items():
            if isinstance(v, dict):  # a BLOB: base64 in CSV
                assert got[k] == v["encoded"]
            elif isinstance(v, float):  # exact, though not always in the same digits
                assert float(got[k]) == v
            else:
                assert got[k] == ("" if v is None else str(v)), k


def test_data_csv_streams_the_whole_table_or_one_page_with_a_link(client):
    whole = list(csv.reader(io.StringIO(client.get("/api/data/orders.csv").data.decode())))
    assert len(whole) == ROWS + 1 and whole[0][0] == "id"
    page = client.get("/api/data/orders.csv?_size=10")
    assert len(list(csv.reader(io.StringIO(page.data.decode())))) == 11
    link = page.headers["Link"]
    assert 'rel="next"' in link
    nxt = client.get(_local(link[1 : link.index(">")]))
    assert [r[0] for r in csv.reader(io.StringIO(nxt.data.decode()))][1:] == [str(i) for i in range(11, 21)]


# -- read-only SQL ---------------------------------------------------------------------------


def test_data_sql_reads(client):
    doc = get(
        client,
        "/api/data/sql.json?sql="
        + "select status, count(*) as n from orders group by status order by status",
    )
    assert doc["columns"] == ["status", "n"]
    assert doc["rows"] == [{"status": s, "n": n} for s, n in (("new", 83), ("paid", 84), ("shipped", 83))]
    assert doc["truncated"] is False
    rows = list(
        csv.reader(io.StringIO(client.get("/api/data/sql.csv?sql=select+id+from+orders+where+id<3").text))
    )
    assert rows == [["id"], ["1"], ["2"]]


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM orders",
        "UPDATE orders SET status = 'x'",
        "INSERT INTO orders (id, total) VALUES (9999, '1')",
        "DROP TABLE orders",
        "CREATE TABLE x (a)",
        "ATTACH DATABASE '/tmp/appliance-attach.db' AS x",
        "PRAGMA query_only = 0",
        "PRAGMA journal_mode = delete",
        "PRAGMA writable_schema = 1",
        "PRAGMA schema_version = 1",
        "VACUUM INTO '{out}'",
        "VACUUM",
        "BEGIN IMMEDIATE",
        "SELECT * FROM _appliance_tables",
        "SELECT load_extension('x')",
    ],
)
def test_data_sql_refuses_anything_but_reading(client, cfg_path, tmp_path, statement):
    out = tmp_path / "copy.db"
    response = client.get("/api/data/sql.json", query_string={"sql": statement.format(out=out)})
    assert response.status_code == 400, response.text
    assert response.get_json()["error"]
    assert not out.exists()
    replica = sqlite3.connect(cfg_path.parent / "state" / "replica.sqlite")
    try:
        assert replica.execute("SELECT count(*) FROM orders WHERE status != 'x'").fetchone()[0] == ROWS
    finally:
        replica.close()


def test_data_sql_hides_the_row_hash_and_caps_rows(client):
    doc = get(client, "/api/data/sql.json?sql=select+*+from+orders+limit+1")
    assert doc["rows"][0].get("_appliance_hash") is None
    endless = "with recursive c(x) as (select 1 union all select x+1 from c) select x from c"
    doc = client.get("/api/data/sql.json", query_string={"sql": endless}).get_json()
    assert len(doc["rows"]) == SQL_MAX_ROWS["json"] and doc["truncated"] is True


def test_data_sql_runaway_query_ends_at_its_limit_while_others_are_served(cfg_path):
    endless = "with recursive c(x) as (select 1 union all select x+1 from c) select count(*) from c"
    with PageServer(dataset.config(cfg_path, open_=True), "127.0.0.1", 0).start() as server:
        base = server.local_url.rstrip("/")
        outcome: dict = {}

        def runaway():
            started = time.monotonic()
            try:
                urllib.request.urlopen(
                    f"{base}/api/data/sql.json?sql={urllib.parse.quote(endless)}", timeout=60
                )
            except urllib.error.HTTPError as e:
                outcome["code"], outcome["body"] = e.code, json.load(e)
            outcome["seconds"] = time.monotonic() - started

        thread = threading.Thread(target=runaway)
        thread.start()
        served = 0
        while thread.is_alive() and served < 200:
            with urllib.request.urlopen(f"{base}/api/data/orders.json?_size=5", timeout=30) as r:
                assert len(json.load(r)["rows"]) == 5
            served += 1
        thread.join(60)
        assert outcome["code"] == 400 and "limit" in outcome["body"]["error"]
        assert served >= 1
        # A deadline against a hung server, not a latency measurement: the limit ended it.
        assert outcome["seconds"] < SQL_TIME_LIMIT + 20
        assert server.alive()


def test_data_wrong_tokens_are_throttled_per_client(cfg_path):
    client = create_app(dataset.config(cfg_path, token=True)).test_client()
    now = [1000.0]
    client.application.extensions["appliance"].throttle = Throttle(clock=lambda: now[0])
    assert client.get("/api/data/orders.json").status_code == 401  # no token yet: not counted
    for _ in range(LIMIT):
        assert (
            client.get("/api/data/orders.json", headers={"Authorization": "Bearer guess"}).status_code == 401
        )
    right = {"Authorization": f"Bearer {TOKEN}"}
    for route in ("/api/data/orders.json", "/api/data/orders.csv", "/data/orders"):
        assert client.get(route, headers=right).status_code == 429, (
            route
        )  # the guesser waits, even when right
    now[0] += WINDOW + 1
    assert client.get("/api/data/orders.json", headers=right).status_code == 200
