"""The table browser and the readiness report on the table page: escaped, paged, same posture.

End to end over a real socket in headless Chromium, with screenshots at phone and desktop
widths in tests/artifacts/web/ (look at them).
"""

from __future__ import annotations

import base64
import re
from html import unescape
from pathlib import Path

import pytest
from click.testing import CliRunner

from appliance.cli import main
from appliance.web import create_app
from appliance.web.server import PageServer

from . import dataset
from .chromium import Browser, find
from .dataset import HOSTILE, ROWS, TOKEN

ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "web"
SIZES = {"phone": (390, 844), "desktop": (1280, 900)}


@pytest.fixture(scope="module")
def cfg_path(pg, sshd, tmp_path_factory):
    return dataset.build(pg, sshd, tmp_path_factory.mktemp("browse"))


@pytest.fixture(scope="module")
def client(cfg_path):
    return create_app(dataset.config(cfg_path, open_=True)).test_client()


def test_browse_shows_a_page_escaped_with_long_values_shortened(client):
    page = client.get("/data/orders").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>col</b>" not in page and "we&#34;ird &lt;b&gt;col&lt;/b&gt;" in page
    details = re.search(r"<details><summary>(long .*?)</summary><div class=\"whole\">(.*?)</div>", page)
    assert details and details.group(1) == ("long " * 8) + "…" and details.group(2) == "long " * 100
    assert page.count("<tr>") == 51  # the header and 50 rows
    assert "&lt;3 bytes&gt;" in page  # a BLOB is described, not dumped
    nxt = unescape(re.search(r'id="next" class="button" href="([^"]+)"', page).group(1))
    second = client.get(nxt).text
    ids = re.findall(r"<tr>\s*<td>(\d+)</td>", second)
    assert ids[:2] == ["51", "52"] and len(ids) == 50


def test_browse_filter_form_sort_and_links_follow_the_api(client):
    form = client.get("/data/orders?_filter_column=status&_filter_op=exact&_filter_value=paid")
    assert form.status_code == 303 and form.headers["Location"].endswith("/data/orders?status=paid")
    page = client.get("/data/orders?status=paid&_sort_desc=total").text
    ids = [int(i) for i in re.findall(r"<tr>\s*<td>(\d+)</td>", page)]
    assert ids == sorted((i for i in range(1, ROWS + 1) if i % 3 == 1), reverse=True)[:50]
    as_json = unescape(re.search(r'id="as-json" href="([^"]+)"', page).group(1))
    doc = client.get(as_json).get_json()
    assert [r["id"] for r in doc["rows"]] == ids
    hostile = client.get("/data/orders", query_string={HOSTILE: "v9"}).text
    assert re.findall(r"<tr>\s*<td>(\d+)</td>", hostile) == ["9"]
    assert client.get("/data/orders?nope=1").status_code == 400
    assert client.get("/data/nope").status_code == 404


def test_browse_follows_the_posture(cfg_path):
    closed = create_app(dataset.config(cfg_path)).test_client()
    assert closed.get("/data/orders").status_code == 403 and "data_api_open" in closed.get("/data/").text
    guarded = create_app(dataset.config(cfg_path, token=True)).test_client()
    refused = guarded.get("/data/orders")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Basic")
    basic = base64.b64encode(f"me:{TOKEN}".encode()).decode()
    ok = guarded.get("/data/orders", headers={"Authorization": f"Basic {basic}"})
    assert ok.status_code == 200 and TOKEN not in ok.text


@pytest.mark.skipif(find() is None, reason="chromium is not installed")
def test_browse_and_readiness_in_chromium_at_phone_and_desktop_widths(cfg_path, tmp_path):
    result = CliRunner().invoke(main, ["--config", str(cfg_path), "schema", "lint"])
    assert result.exit_code == 1, result.output  # the dataset has findings (no trigger, JSON ...)
    browser = Browser(find(), tmp_path / "profile")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        with PageServer(dataset.config(cfg_path, open_=True), "127.0.0.1", 0).start() as server:
            for size, (width, height) in SIZES.items():
                browser.open(server.local_url + "data/orders", width, height)
                assert browser.errors() == []
                assert not browser.width_overflows(), f"the browser scrolls sideways at {size} width"
                assert "<script>alert(1)</script>" in browser.text("#rows")
                browser.screenshot(ARTIFACTS / f"data-orders-{size}.png")
                browser.open(server.local_url + "tables/dataapi.orders", width, height)
                assert browser.errors() == []
                assert not browser.width_overflows(), f"the table page scrolls sideways at {size} width"
                assert "question(s) for the source team" in browser.text("#readiness")
                assert "open to anyone" in browser.text("#data-api")
                browser.screenshot(ARTIFACTS / f"table-readiness-{size}.png")
                browser.open(server.local_url + "data/", width, height)
                assert browser.errors() == [] and not browser.width_overflows()
    finally:
        browser.close()
