"""Bitmap text: widths, shortening on glyph boundaries, wrapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.indicator import font


def test_font_width_counts_glyphs_and_gaps():
    assert font.width("") == 0
    assert font.width("A") == 6
    assert font.width("AA") == 13
    assert font.width("AA", scale=2, gap=2) == 26
    assert font.width("A", face=font.NARROW) == 5
    assert font.width("i") < font.width("m")  # proportional, not fixed width


def _pixels(text: str) -> Image.Image:
    image = Image.new("1", (40, font.HEIGHT))
    font.draw(image, (0, 0), text)
    return image


def test_font_body_has_descenders():
    # The 5x7 font drew "g" as "9", so "lag" read "la9": the body font reaches below the line.
    for ch in "gjpqy":
        bottom = _pixels(ch).crop((0, font.HEIGHT - 1, 40, font.HEIGHT))
        assert bottom.getbbox() is not None, f"{ch!r} has no descender"
    assert _pixels("g").tobytes() != _pixels("9").tobytes()
    assert _pixels("A").crop((0, font.HEIGHT - 1, 40, font.HEIGHT)).getbbox() is None


def test_font_draw_stays_within_its_width_and_height():
    image = Image.new("1", (100, 20))
    drawn = font.draw(image, (3, 2), "Hello, lag 12m")
    assert drawn == font.width("Hello, lag 12m")
    left, top, right, bottom = image.getbbox()
    assert (left, top) == (3, 2)
    assert right <= 3 + drawn and bottom <= 2 + font.HEIGHT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plain", "plain"),
        ("café", "cafe"),
        ("tab\there", "tab here"),
        ("snow☃man", "snow?man"),
    ],
)
def test_font_printable_transliterates_or_marks(text, expected):
    assert font.printable(text) == expected


def test_font_shorten_keeps_text_that_fits():
    assert font.shorten("orders", 126) == "orders"


def test_font_shorten_cuts_between_glyphs_and_marks_it():
    name = "warehouse_reporting.customer_lifetime_value_snapshots_daily"
    short = font.shorten(name, 80)
    assert short.endswith(font.ELLIPSIS)
    assert name.startswith(short.removesuffix(font.ELLIPSIS))
    assert font.width(short) <= 80
    # The longest such prefix: one more glyph would not fit.
    longer = name[: len(short) - len(font.ELLIPSIS) + 1] + font.ELLIPSIS
    assert font.width(longer) > 80


def test_font_shorten_to_nothing_when_even_the_mark_does_not_fit():
    assert font.shorten("orders", 2) == ""


def test_font_wrap_breaks_at_spaces_and_marks_the_rest():
    text = "Tunnel down: the bastion refused the connection, retrying every minute"
    lines = font.wrap(text, 126, 2)
    assert lines[0] == "Tunnel down: the"  # the next word would not fit on this line
    assert lines[1].startswith("bastion refused")
    assert lines[1].endswith(font.ELLIPSIS)
    assert all(font.width(line) <= 126 for line in lines)


def test_font_wrap_breaks_a_long_word_after_punctuation():
    lines = font.wrap("no state store in /var/lib/appliance/state", 126, 4)
    assert lines == ["no state store in", "/var/lib/", "appliance/state"]


def test_font_fits_says_whether_nothing_is_cut():
    assert font.fits("All 3 tables are up to date.", 126, 2)
    assert not font.fits("All 3 tables are up to date.", 126, 1)


def test_font_shorten_front_keeps_the_end():
    text = "connection to server failed: Connection refused"
    short = font.shorten_front(text, 100)
    assert short.startswith(font.ELLIPSIS) and short.endswith("refused")
    assert text.endswith(short.removeprefix(font.ELLIPSIS))
    assert font.width(short) <= 100
    # The longest such ending: one more glyph would not fit.
    assert font.width(font.ELLIPSIS + text[-len(short) + 1 :]) > 100
    assert font.shorten_front("refused", 126) == "refused"


def test_font_wrap_end_keeps_the_last_words_and_marks_the_cut():
    lines = font.wrap_end("port 5432 failed because the server said: Connection refused", 126, 2)
    assert lines[-1] == "Connection refused"
    assert lines[0].startswith(font.ELLIPSIS)
    assert all(font.width(line) <= 126 for line in lines)
    assert font.wrap_end("short", 126, 2) == ["short"]


@pytest.mark.parametrize(
    "call",
    [
        lambda text: font.wrap(text, 126, 3),
        lambda text: font.wrap_end(text, 126, 3),
        lambda text: font.shorten(text, 126),
        lambda text: font.shorten_front(text, 126),
        lambda text: font.fits(text, 126, 3),
    ],
)
@pytest.mark.parametrize("text", ["x" * 30_000, "word " * 6_000, "a: " * 10_000])
def test_font_layout_work_does_not_grow_with_the_text_squared(call, text):
    # A 30 KB upstream error cost 40 s a frame: count the glyph measurements instead of
    # timing them. A layout may read the text once; it must not measure it again per glyph.
    font.glyph.cache_clear()
    call(text)
    info = font.glyph.cache_info()
    assert info.hits + info.misses <= 2 * len(text) + 1000


def test_font_wrap_breaks_a_word_wider_than_the_line():
    lines = font.wrap("x" * 60, 50, 3)
    assert len(lines) == 3
    assert all(font.width(line) <= 50 for line in lines)


def test_font_wrap_short_text_is_one_line():
    assert font.wrap("All fresh.", 126, 2) == ["All fresh."]
    assert font.wrap("", 126, 2) == []


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120), st.integers(min_value=0, max_value=126), st.integers(min_value=1, max_value=3))
def test_font_wrap_and_shorten_never_overflow(text, limit, lines):
    assert font.width(font.shorten(text, limit)) <= limit
    wide = max(limit, 8)  # a line holds at least one glyph (the widest is 8 columns)
    for wrapped in (font.wrap(text, wide, lines), font.wrap_end(text, wide, lines)):
        assert len(wrapped) <= lines
        assert all(font.width(line) <= wide for line in wrapped)
    assert font.width(font.shorten_front(text, limit)) <= limit
