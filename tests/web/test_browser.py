"""End to end: the real server on a socket, the page in headless Chromium, per state.

Screenshots at phone and desktop widths land in tests/artifacts/web/ (gitignored).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appliance.schema import contract
from appliance.schema.shape import Column, Shape
from appliance.web.server import PageServer

from .chromium import Browser, find
from .states import WORDS, drift_at_source, fill, force

ARTIFACTS = Path(__file__).parents[1] / "artifacts" / "web"
SIZES = {"phone": (390, 844), "desktop": (1280, 900)}

pytestmark = pytest.mark.skipif(
    find() is None,
    reason="chromium is not installed (scripts/test installs Debian's chromium when run as root)",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    browser = Browser(find(), tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


@pytest.fixture
def served(config):
    with PageServer(config, "127.0.0.1", 0).start() as server:
        yield server


@pytest.mark.parametrize("state", ["ok", "lagging", "drift", "maintenance", "outage"])
def test_browser_banner_matches_the_state(config, served, browser, monkeypatch, state):
    if state == "maintenance":
        fill(config, "ok")
        force(monkeypatch, "maintenance")  # no producer in the store yet
    else:
        fill(config, state)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for size, (width, height) in SIZES.items():
        browser.open(served.local_url, width, height)
        assert browser.errors() == []
        assert browser.text("#banner .word") == WORDS[state]
        assert browser.text("#banner .next").startswith("What to do:")
        assert not browser.width_overflows(), f"{state} scrolls sideways at {size} width"
        browser.screenshot(ARTIFACTS / f"overview-{state}-{size}.png")


PAGES = (
    "",
    "tables/public.orders",
    "tables/public.items",
    "events",
    "actions/ack",
    "actions/accept",
    "actions/accept/public.orders",
    "actions/maintenance",
    "data/",
    "data/orders",
    "api/status",
    "metrics",
)


def test_browser_every_page_fits_a_phone_and_loads_cleanly(make_config, browser):
    config = make_config(actions_open=True, web={"data_api_open": True})
    fill(config, "drift")
    with sqlite3.connect(f"{config.state_dir}/replica.sqlite") as db:  # a table for the browser
        db.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, total TEXT, note TEXT)")
        db.execute("INSERT OR REPLACE INTO orders VALUES (1, '12.50', ?)", ("a long note " * 40,))
    with PageServer(config, "127.0.0.1", 0).start() as server:
        for path in PAGES:
            _fits(browser, server.local_url + path)
        browser.open(server.local_url + "tables/public.orders", *SIZES["desktop"])
        browser.screenshot(ARTIFACTS / "table-drift-desktop.png")


def _fits(browser, url: str) -> None:
    path = url.split("/", 3)[3]
    browser.open(url, *SIZES["phone"])
    assert browser.errors() == [], path
    assert not browser.width_overflows(), f"/{path} scrolls sideways on a 390 px phone"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser.screenshot(ARTIFACTS / f"phone-{path.strip('/').replace('/', '-') or 'overview'}.png")


def test_browser_agent_down_and_first_boot(config, served, browser):
    browser.open(served.local_url, *SIZES["phone"])
    assert "never reported" in browser.text("#banner .agent-down")
    browser.screenshot(ARTIFACTS / "overview-first-boot-phone.png")
    fill(config, "ok", agent_ago=3600)
    browser.open(served.local_url, *SIZES["phone"])
    assert browser.text("#banner .agent-down").startswith("Agent not running since ")
    assert browser.errors() == []


def test_browser_names_and_types_are_never_broken_mid_word_on_a_phone(make_config, browser):
    long_table = "public." + "very_long_name" * 12
    config = make_config(actions_open=True, tables=[{"name": "public.orders"}, {"name": long_table}])
    fill(config, "ok")
    drift_at_source(config, "public.orders")
    wide = Shape(
        long_table, [Column("id", "bigint", "integer", False), Column("column_" * 30, "text", "text")], ["id"]
    )
    contract.save(config.state_dir, long_table, contract.snapshot(wide))
    with PageServer(config, "127.0.0.1", 0).start() as server:
        for table in ("public.orders", long_table):
            browser.open(server.local_url + "tables/" + table, *SIZES["phone"])
            # An inline element broken across lines has one client rectangle per line.
            cells = browser.evaluate(
                "[...document.querySelectorAll('table.contract td code')]"
                ".map(c => [c.textContent, c.getClientRects().length])"
            )
            assert len(cells) >= 4, (table, cells)
            assert [text for text, lines in cells if lines > 1] == [], table
            assert not browser.width_overflows(), table  # the long one scrolls inside its box
