"""Markup from the database is shown as text everywhere: names, values, errors, events."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import quote

import pytest
from markupsafe import escape

from appliance.clock import iso, utcnow
from appliance.health import status as health
from appliance.health.store import StateStore
from appliance.web import create_app

from .states import HOSTILE, HOSTILE_TABLE, HOSTILE_VALUE, fill


class _Tags(HTMLParser):
    """Collect every start tag and attribute name the browser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.images: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}
        if tag == "img":
            self.images.add(dict(attrs).get("src", ""))


def _hostile_store(config) -> None:
    fill(
        config,
        "drift",
        drift=[
            {
                "kind": "column_added",
                "column": HOSTILE,
                "breaking": False,
                "detail": f"column {HOSTILE} was added",
                "value": "",
            },
            {
                "kind": "value_not_allowed",
                "column": HOSTILE,
                "breaking": False,
                "detail": f"undocumented value {HOSTILE_VALUE}",
                "value": HOSTILE_VALUE,
            },
        ],
    )
    now = iso(utcnow())
    with StateStore(config.state_dir) as store:
        store.record_table(HOSTILE_TABLE, "evil", error=f"cannot read {HOSTILE}", now=now)
        store.put(
            f"drift:{HOSTILE_TABLE}",
            [{"kind": "type_changed", "column": HOSTILE, "breaking": True, "detail": HOSTILE, "value": ""}],
        )
        store.put(
            f"contract:{HOSTILE_TABLE}",
            {
                "columns": [{"name": HOSTILE, "type": HOSTILE_VALUE, "nullable": True, "enum": [HOSTILE]}],
                "primary_key": [HOSTILE],
            },
        )
        store.put(
            "source_drift",
            [
                {
                    "kind": "table_added",
                    "column": "",
                    "breaking": False,
                    "detail": f"new table {HOSTILE}",
                    "value": HOSTILE,
                }
            ],
        )
        store.event("notify", f"gave up: {HOSTILE}", table=HOSTILE_TABLE)
        store.event(HOSTILE, HOSTILE_VALUE, table=HOSTILE)
        store.run(now, now, False, 0, f"pass failed: {HOSTILE}")
        health.update(config, store)


@pytest.fixture
def hostile(make_config):
    config = make_config(hostile=True)
    _hostile_store(config)
    return config, create_app(config).test_client()


# Every page that shows the store's text; each renders (200) with the hostile state.
# A name that is not configured is a 404 page: test_escaping_not_found_message_is_text.
PAGES = [
    "/",
    f"/tables/{quote(HOSTILE_TABLE, safe='')}",
    "/tables/public.orders",
    "/events",
    "/actions/ack",
    f"/actions/accept/{quote(HOSTILE_TABLE, safe='')}",
    "/actions/accept",
]


@pytest.mark.parametrize("path", PAGES)
def test_escaping_hostile_text_is_shown_as_text(hostile, path):
    _, client = hostile
    response = client.get(path)
    assert response.status_code == 200, f"{path} did not render: {response.status_code}"
    page = response.text
    parser = _Tags()
    parser.feed(page)
    assert "script" not in parser.tags and parser.images <= {"/oled.png"}
    assert not [a for a in parser.attributes if a.startswith("on")]
    assert "<script" not in page and "<img src=x" not in page
    assert HOSTILE not in page and HOSTILE_VALUE not in page  # never raw
    assert str(escape(HOSTILE)) in page  # shown, as text


def test_escaping_each_place_shows_the_text(hostile):
    _, client = hostile
    overview = client.get("/").text
    table = client.get(f"/tables/{quote(HOSTILE_TABLE, safe='')}").text
    orders = client.get("/tables/public.orders").text
    text = str(escape(HOSTILE))
    assert str(escape(HOSTILE_TABLE)) in overview  # the table's name
    assert f"cannot read {text}" in overview  # its error
    assert f"gave up: {text}" in overview  # the event log
    assert str(escape(HOSTILE_VALUE)) in overview  # an event's message
    assert f"new table {text}" in overview  # a new table at the source
    assert f"<code>{text}</code>" in table  # a column name in the contract and the diff
    assert str(escape(HOSTILE_VALUE)) in orders  # a data check's example value
    assert f"pass failed: {text}" in orders  # a run's summary


def test_escaping_not_found_message_is_text(hostile):
    _, client = hostile
    response = client.get(f"/tables/{quote(HOSTILE, safe='')}")
    assert response.status_code == 404
    assert "<script" not in response.text and str(escape(HOSTILE)) in response.text


def test_escaping_metrics_labels_are_quoted(hostile):
    _, client = hostile
    text = client.get("/metrics").text
    assert 'table="public.<script>alert(\\"t\\")</script>\'q"' in text


@pytest.mark.parametrize("before", ["9" * 40, "١٢", "-1", "1e9", "%00"])
def test_escaping_events_before_anything_is_a_400_never_a_500(config, client, before):
    fill(config, "ok")
    response = client.get(f"/events?before={before}")
    assert response.status_code == 400 and "event number" in response.text
