"""The OLED's picture: golden PNGs per state, compared pixel for pixel through luma's dummy.

To regenerate the golden pictures after an intended change of the drawing, run
    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/indicator/test_frame.py
then look at every changed PNG under tests/indicator/golden/ before committing it. A run
that rewrites the pictures fails (it compared nothing), and CI=true refuses to rewrite.
"""

from __future__ import annotations

import io
import os
from datetime import UTC, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.indicator import font
from appliance.indicator.frame import (
    BOX,
    CAP,
    LINE,
    MARGIN,
    SIZE,
    TOP,
    frame_png,
    render_address_frame,
    render_frame,
)
from appliance.indicator.view import unreadable

from . import statuses as s

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("UPDATE_GOLDEN"))
CI = os.environ.get("CI", "").lower() in ("true", "1")

FRAMES = {
    **{
        name: (lambda make=make: render_frame(make(), s.ADDRESS, s.NOW, UTC))
        for name, make in s.STATES.items()
    },
    "no_status": lambda: render_frame(
        unreadable(OSError("no state store in /var/lib/appliance")), s.ADDRESS, s.NOW, UTC
    ),
    # Local time with its zone; an address too wide for the body font in the narrow one.
    "ok_cet_long_ip": lambda: render_frame(
        s.status(), "192.168.100.123:8080", s.NOW, timezone(timedelta(hours=1), "CET")
    ),
    "address": lambda: render_address_frame("192.168.1.23", "http://192.168.1.23:8080/"),
    "address_long_ip": lambda: render_address_frame("192.168.100.123", "http://192.168.100.123:8080/"),
    "no_network": lambda: render_address_frame(None, None),
}


def _on_dummy(device, image: Image.Image) -> Image.Image:
    device.display(image)
    return device.image


def _rewrite(shown: Image.Image, path: Path) -> None:
    """Write ``shown`` as the golden picture, then fail: a rewritten picture proves nothing."""
    if CI:
        pytest.fail(
            "UPDATE_GOLDEN is set with CI=true: golden pictures are rewritten only by hand, never in CI"
        )
    old = Image.open(path).convert("1").tobytes() if path.exists() else None
    shown.save(path)
    change = "unchanged" if old == shown.tobytes() else "changed"
    pytest.fail(
        f"golden pictures rewritten: review and commit {path} ({change}); then run without UPDATE_GOLDEN"
    )


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_render_frame_matches_golden(name, device, tmp_path):
    shown = _on_dummy(device, FRAMES[name]())
    path = GOLDEN / f"{name}.png"
    if UPDATE:
        _rewrite(shown, path)
    assert path.exists(), f"no golden picture {path}; run with UPDATE_GOLDEN=1 to create it"
    golden = Image.open(path)
    assert (shown.mode, shown.size) == ("1", SIZE)
    assert (golden.mode, golden.size) == ("1", SIZE)
    if shown.tobytes() != golden.convert("1").tobytes():
        shown.save(tmp_path / f"{name}.png")
        pytest.fail(f"{name}: the picture differs from {path}; see {tmp_path / name}.png")


@pytest.mark.parametrize("name", sorted(FRAMES))
def test_render_frame_stays_inside_the_margin(name):
    image = FRAMES[name]()
    left, top, right, bottom = image.getbbox()
    assert left >= MARGIN and top >= MARGIN
    assert right <= MARGIN + BOX[0] and bottom <= MARGIN + BOX[1]


def test_render_frame_is_deterministic():
    doc = s.outage()
    assert (
        render_frame(doc, s.ADDRESS, s.NOW, UTC).tobytes()
        == render_frame(doc, s.ADDRESS, s.NOW, UTC).tobytes()
    )


def test_render_frame_differs_per_state():
    pictures = {FRAMES[name]().tobytes() for name in s.STATES}
    assert len(pictures) == len(s.STATES)


def _band(image: Image.Image, line: int) -> bytes:
    top = MARGIN + TOP + line * LINE
    return image.crop((0, top, SIZE[0], top + LINE)).tobytes()


def _line(text: str, line: int) -> bytes:
    """Return the pixels of ``text`` drawn as body line number ``line``."""
    image = Image.new("1", SIZE)
    font.draw(image, (MARGIN, MARGIN + TOP + line * LINE), text)
    return _band(image, line)


def assert_lines(image: Image.Image, *texts: str, first: int = 0) -> None:
    """Assert the body lines from ``first`` on show ``texts``, pixel for pixel."""
    for i, text in enumerate(texts, start=first):
        assert _band(image, i) == _line(text, i), f"line {i} is not {text!r}"


def test_render_frame_shortens_a_long_table_name_between_glyphs():
    name = "warehouse_reporting.customer_lifetime_value_snapshots_daily"
    doc = s.long_names()
    doc["reason"] = "Slow source."
    image = render_frame(doc, s.ADDRESS, s.NOW, UTC)
    detail = ": lag 2d 2h"
    expected = font.shorten(name.split(".")[1], BOX[0] - font.width(detail) - 1) + detail
    assert expected.startswith("custo") and ".." in expected
    assert_lines(image, "since 14:02 UTC", "Slow source.", expected)


def test_render_frame_shows_the_cause_not_the_category_twice():
    # Was "Database unreachable: database unreachable at 127.0.0.1:5432: conn..": the
    # category twice and the cause cut off. Now the category once, then the cause.
    image = render_frame(s.database_down(), s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "Database", "unreachable:", "Connection refused", first=2)


def test_render_frame_shortens_a_chain_from_the_front():
    reason = (
        "public.orders: the source failed a query: could not read block 7 in file "
        '"base/16384/2619" of relation pg_class, retried 3 times: Input/output error. Check the disk.'
    )
    image = render_frame(s.status("outage", reason), s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "public.orders:", "Input/output error", first=1)


def test_render_frame_wraps_prose_from_its_start():
    image = render_frame(s.frozen(), s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "orders frozen:", "column total", "changed from", first=1)


@pytest.mark.parametrize("make", [s.outage, s.lagging, s.agent_down, s.drift, s.status])
def test_render_frame_keeps_since_with_the_zone(make):
    image = render_frame(make(), s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "since 14:02 UTC")


def test_render_frame_says_the_date_when_not_today():
    doc = {**s.maintenance(), "maintenance": {"active": None, "next": None}}  # no window: since
    image = render_frame(doc, s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "since 22 Nov", "22:00 UTC")


def test_render_frame_maintenance_says_until_and_what_is_done():
    image = render_frame(s.maintenance(), s.ADDRESS, s.NOW, UTC)
    assert_lines(image, "until 16:00 UTC", "PostgreSQL")


def test_render_frame_shows_local_time_and_the_zone_once():
    cet = timezone(timedelta(hours=1), "CET")
    image = render_frame(s.agent_down(), s.ADDRESS, s.NOW, cet)
    assert_lines(image, "since 15:02 CET", "Sync stopped 15:09")


def test_render_frame_fresh_install_is_not_lagging():
    fresh, lagging = (render_frame(doc, s.ADDRESS, s.NOW, UTC) for doc in (s.fresh_install(), s.lagging()))
    top = (0, 0, SIZE[0], TOP)
    assert fresh.crop(top).tobytes() != lagging.crop(top).tobytes()
    assert_lines(fresh, "since 14:25 UTC", "Sync not running")


def test_render_frame_caps_upstream_text_before_layout():
    reason = "Database unreachable: " + "could not connect: " * 2000  # 38 KB from upstream
    huge = s.status("outage", reason, tables=[s.table("t" * 30_000)])
    capped = s.status("outage", reason[:CAP], tables=[s.table("t" * CAP)])
    font.glyph.cache_clear()
    image = render_frame(huge, "1" * 30_000, s.NOW, UTC)
    info = font.glyph.cache_info()
    assert info.hits + info.misses < 20 * CAP  # measured work, not a stopwatch
    assert image.tobytes() == render_frame(capped, "1" * CAP, s.NOW, UTC).tobytes()


def test_render_frame_defaults_to_now():
    image = render_frame(s.status(), s.ADDRESS)
    assert (image.mode, image.size) == ("1", SIZE)


def test_frame_png_is_the_same_picture():
    data = frame_png(s.drift(), s.ADDRESS, s.NOW, UTC)
    assert data.startswith(b"\x89PNG")
    image = Image.open(io.BytesIO(data))
    assert image.convert("1").tobytes() == render_frame(s.drift(), s.ADDRESS, s.NOW, UTC).tobytes()


texts = st.text(st.characters(min_codepoint=1, max_codepoint=0x2FF), max_size=200)


@settings(max_examples=40, deadline=None)
@given(
    name=texts,
    reason=texts,
    state=st.sampled_from(list(s.STATES) + ["weird state"]),
    lag=st.one_of(
        st.none(), st.floats(min_value=0, max_value=1e9), st.sampled_from([float("inf"), float("nan"), "12"])
    ),
    acknowledged=st.booleans(),
    address=texts,
)
def test_render_frame_never_overflows(name, reason, state, lag, acknowledged, address):
    doc = s.status(
        state,
        reason,
        acknowledged=acknowledged,
        tables=[s.table(name, state, lag=lag, frozen=isinstance(lag, float))],
    )
    image = render_frame(doc, address, s.NOW, UTC)
    assert (image.mode, image.size) == ("1", SIZE)
    bbox = image.getbbox()
    if bbox:
        assert bbox[0] >= MARGIN and bbox[1] >= MARGIN
        assert bbox[2] <= MARGIN + BOX[0] and bbox[3] <= MARGIN + BOX[1]
