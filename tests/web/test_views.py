"""The read-only pages: every route, its status code and what an engineer reads there."""

from __future__ import annotations

import io
import json
import re
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Response
from markupsafe import escape
from PIL import Image

from appliance.clock import utcnow
from appliance.health.store import StateStore
from appliance.indicator.address import page_address
from appliance.indicator.frame import SIZE, render_frame
from appliance.web import create_app, views

from .states import WORDS, fill, force

CELL = re.compile(r'<span class="cell s-(\w+)" title=')  # the cells of the 24 h bars
ROUTES = {  # route -> (status code, content type) with a filled store
    "/": (200, "text/html"),
    "/tables/public.orders": (200, "text/html"),
    "/tables/orders": (200, "text/html"),  # the replica name works too
    "/events": (200, "text/html"),
    "/events?before=3": (200, "text/html"),
    "/api/status": (200, "application/json"),
    "/metrics": (200, "text/plain"),
    "/livez": (200, "text/plain"),
    "/readyz": (200, "text/plain"),
    "/oled.png": (200, "image/png"),
    "/static/style.css": (200, "text/css"),
    "/favicon.ico": (302, None),
    "/favicon.svg": (200, "image/svg+xml"),
    "/actions/ack": (200, "text/html"),
    "/actions/accept/public.orders": (200, "text/html"),
    "/tables/public.nope": (404, "text/html"),
    "/actions/accept/public.nope": (404, "text/html"),
    "/events?before=abc": (400, "text/html"),
    "/no/such/page": (404, "text/html"),
}


@pytest.mark.parametrize("route", ROUTES)
def test_views_route_answers_with_its_status_and_type(config, client, route):
    fill(config, "lagging")
    with client.get(route) as response:  # closes the static file's handle
        code, kind = ROUTES[route]
        assert response.status_code == code
        if kind:
            assert response.mimetype == kind
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "script-src" not in response.headers["Content-Security-Policy"]  # no script at all


@pytest.mark.parametrize("route", ["/", "/api/status", "/readyz", "/livez", "/metrics"])
def test_views_state_changing_methods_are_refused(client, route):
    assert client.post(route).status_code == 405
    assert client.delete(route).status_code == 405


@pytest.mark.parametrize("state", ["ok", "lagging", "drift", "outage"])
def test_views_banner_shows_state_reason_since_and_next_step(config, client, state):
    fill(config, state)
    page = client.get("/").text
    banner = page.split('id="banner"', 1)[1].split("</section>", 1)[0]
    assert f"s-{state}" in page and f'<p class="word">{WORDS[state]}</p>' in banner
    assert re.search(r"Since (\d+ \w{3} )?\d\d:\d\d(:\d\d)? UTC \(", banner) and "What to do:" in banner
    if state == "outage":
        assert "SSH tunnel to the bastion is down" in banner
        assert "Connection refused" in page
    if state == "drift":
        assert "accept the change" in banner and escape('column "discount_code"') in banner
    if state == "ok":
        assert "Nothing to do" in banner and "Acknowledge" not in banner
    else:
        assert 'href="/actions/ack"' in banner


def test_views_banner_for_maintenance(config, client, monkeypatch):
    fill(config, "ok")
    force(monkeypatch, "maintenance")
    page = client.get("/").text
    assert '<p class="word">Maintenance</p>' in page and "nothing to do" in page


def test_views_page_refreshes_itself_and_fits_a_phone(config, client):
    fill(config, "ok")
    page = client.get("/").text
    assert '<meta http-equiv="refresh" content="15">' in page
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page
    assert "<script" not in page and "http://" not in page.split("<body>")[0]  # no CDN


def test_views_overview_lists_tables_with_rows_lag_drift_and_history(config, client):
    fill(config, "lagging")
    page = client.get("/").text
    assert 'href="/tables/public.orders"' in page and "1,200" in page
    assert "<dt>Lag</dt><dd>15m</dd>" in page
    assert page.count('class="bar"') == 2 and len(CELL.findall(page)) == 2 * 24
    assert "cell s-lagging" in page  # items' current hour
    assert 'src="/oled.png"' in page


def test_views_overview_shows_host_and_address(make_config, monkeypatch):
    monkeypatch.setattr("appliance.web.views.hostname", lambda: "pi-site-7")
    monkeypatch.setattr("appliance.web.views.lan_ip", lambda: "192.168.1.23")
    config = make_config()
    assert "pi-site-7 &middot; http://127.0.0.1:8080/" in create_app(config).test_client().get("/").text
    public = replace(config, web=replace(config.web, host="0.0.0.0"))
    page = create_app(public).test_client().get("/").text
    assert "pi-site-7 &middot; http://192.168.1.23:8080/" in page


def test_views_first_boot_empty_store(config, client):
    page = client.get("/").text
    assert "Agent not running: it has never reported" in page
    assert "has not run yet" in page and "never" in page
    assert "No events recorded yet." in page
    assert CELL.findall(page) == ["none"] * 2 * 24
    assert client.get("/tables/public.orders").status_code == 200
    assert client.get("/readyz").status_code == 200  # lagging on first boot, not an outage


def test_views_agent_down_says_since_when(config, client):
    fill(config, "ok", agent_ago=3600)
    page = client.get("/").text
    banner = page.split('id="banner"', 1)[1].split("</section>", 1)[0]
    assert re.search(r"Agent not running since (\d+ \w{3} )?\d\d:\d\d(:\d\d)? UTC \(1h ago\)", banner)
    assert "sudo systemctl restart appliance-sync" in banner


def test_views_readyz_is_503_only_during_an_outage(config, client):
    fill(config, "outage")
    response = client.get("/readyz")
    assert response.status_code == 503 and "Connection refused" in response.text
    fill(config, "lagging")
    assert client.get("/readyz").status_code == 200
    assert client.get("/livez").status_code == 200


def test_views_event_log_is_keyset_paged(config, client):
    with StateStore(config.state_dir) as store:
        for i in range(120):
            store.event("test", f"event number {i}")
    first = client.get("/").text
    assert "event number 119" in first and "event number 99" not in first
    assert 'href="/events?before=101"' in first  # the overview shows the newest 20
    page = client.get("/events?before=101").text
    assert "event number 99" in page and "event number 50" in page
    assert "event number 100" not in page and "event number 49" not in page
    assert 'href="/events?before=51"' in page and 'href="/events"' in page
    last = client.get("/events?before=2").text
    assert "event number 0" in last and "Older events" not in last


def test_views_table_page_shows_contract_diff_checks_and_runs(config, client):
    drift = [
        {
            "kind": "column_added",
            "column": "discount_code",
            "breaking": False,
            "detail": 'column "discount_code" (text) was added',
            "value": "",
        },
        {
            "kind": "type_changed",
            "column": "amount",
            "breaking": True,
            "detail": '"amount" changed type from numeric(10,2) to text',
            "value": "",
        },
        {
            "kind": "value_not_allowed",
            "column": "status",
            "breaking": False,
            "detail": "\"status\" has the undocumented value 'ON_HOLD' (row id=7)",
            "value": "",
        },
        {
            "kind": "json_keys_changed",
            "column": "meta",
            "breaking": False,
            "detail": '"meta" has JSON key(s) not seen before: coupon (row id=9)',
            "value": "coupon",
        },
    ]
    fill(config, "drift", drift=drift)
    contract = Path(config.state_dir) / "contract" / "public.orders.json"
    contract.parent.mkdir()
    contract.write_text(
        json.dumps(
            {
                "version": 1,
                "table": "public.orders",
                "cursor": "updated_at",
                "primary_key": ["id"],
                "json_keys": {"meta": ["channel"]},
                "columns": [
                    {"name": "id", "type": "bigint", "kind": "int", "nullable": False},
                    {"name": "amount", "type": "numeric(10,2)", "kind": "numeric", "nullable": True},
                    {
                        "name": "status",
                        "type": "order_status",
                        "kind": "enum",
                        "nullable": False,
                        "enum": ["new", "paid"],
                    },
                    {"name": "meta", "type": "jsonb", "kind": "json", "nullable": True},
                ],
            }
        )
    )
    page = client.get("/tables/public.orders").text
    assert "<code>bigint</code>" in page and "primary key" in page
    assert "enum: new, paid" in page and "JSON keys: channel" in page
    assert '<code class="sign">+</code> column &#34;discount_code&#34; (text) was added' in page
    assert page.count("discount_code") == 1  # said once: no column label, no kind repeated
    assert '<li class="breaking">' in page and "from numeric(10,2) to text" in page
    assert "the undocumented value &#39;ON_HOLD&#39;" in page
    assert 'example: <code class="value">coupon</code>' in page
    assert "pass ok: 2 tables" in page
    assert 'href="/actions/accept/public.orders"' in page


def test_views_table_page_lists_its_own_passes_and_all_its_settings(make_config):
    config = make_config(
        actions_open=True,
        tables=[
            {
                "name": "public.orders",
                "where": "NOT is_test",
                "soft_delete": "deleted_at",
                "history": ["status"],
            },
            {"name": "public.items"},
        ],
    )
    client = create_app(config).test_client()
    fill(config, "ok")
    with StateStore(config.state_dir) as store:
        store.run(
            "2024-01-01T00:00:00Z",
            "2024-01-01T00:00:01Z",
            True,
            5,
            "pass ok: 1 tables, ONLY-ITEMS (public.items +5/-0)",
        )
    orders = client.get("/tables/public.orders").text
    items = client.get("/tables/public.items").text
    assert "ONLY-ITEMS" in items and "ONLY-ITEMS" not in orders
    assert "<code>NOT is_test</code>" in orders and "<code>deleted_at</code>: rows kept" in orders
    assert "orders__history" in orders and "none: every row" in items


def test_views_table_page_without_contract_or_drift(config, client):
    fill(config, "ok")
    page = client.get("/tables/public.items").text
    assert "No contract recorded yet." in page and "No violations." in page
    assert "None: the source matches the contract" in page


def test_views_oled_is_the_indicators_picture(config, client):
    fill(config, "outage")
    response = client.get("/oled.png")
    picture = Image.open(io.BytesIO(response.data))
    assert picture.size == SIZE
    status = client.get("/api/status").json
    now = utcnow()
    expected = render_frame(status, page_address(config.web).short, now)
    assert picture.convert("1").tobytes() == expected.tobytes()


def test_views_without_the_indicator_the_picture_is_omitted(config, client, monkeypatch):
    monkeypatch.setattr(views, "_frame_png", lambda: None)
    assert client.get("/oled.png").status_code == 404
    assert "oled.png" not in client.get("/").text


def test_views_ages_follow_the_clock_without_a_write(config, app, client):
    fill(config, "ok", now=utcnow() - timedelta(seconds=20))
    cache = app.extensions["appliance"].cache
    t = [1000.0]
    cache.clock = lambda: t[0]
    before = client.get("/api/status").json["tables"][0]["lag_seconds"]
    assert client.get("/api/status").json["tables"][0]["lag_seconds"] == before  # cached
    t[0] += cache.period
    assert client.get("/api/status").json["tables"][0]["lag_seconds"] > before


@pytest.mark.parametrize("path", ["/", "/api/status", "/metrics"])
def test_views_hot_pages_are_served_from_cache_without_flask(config, app, client, path, monkeypatch):
    fill(config, "lagging")
    first = client.get(path)  # Flask renders and fills the cache
    seen = []
    monkeypatch.setattr(
        "flask.app.Flask.full_dispatch_request", lambda self: seen.append(1) or Response("flask", 500)
    )
    again = client.get(path)
    assert seen == [] and again.data == first.data
    keep = (
        "Content-Type",
        "Content-Length",
        "Cache-Control",
        "Content-Security-Policy",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "X-Frame-Options",
    )
    assert {k: again.headers[k] for k in keep} == {k: first.headers[k] for k in keep}
    head = client.head(path)
    assert head.status_code == 200 and head.data == b"" and seen == []
    assert client.get(path + "?x=1").status_code == 500 and seen == [1]  # not the fast path


@pytest.mark.parametrize(("state", "shape"), [("ok", "<circle"), ("drift", "<path"), ("outage", "<rect")])
def test_views_favicon_says_the_state_by_colour_and_shape(config, client, state, shape):
    fill(config, state)
    icon = client.get("/favicon.svg").text
    assert icon.startswith("<svg") and shape in icon
    assert "/favicon.svg" in client.get("/").text


@pytest.mark.parametrize("state", ["lagging", "drift", "maintenance", "outage"])
def test_views_states_differ_by_pattern_not_colour_alone(client, state):
    with client.get("/static/style.css") as response:  # closes the static file's handle
        css = response.text
    assert re.search(rf"\.cell\.s-{state} \{{ background-image:", css), f"{state} has only a colour"
