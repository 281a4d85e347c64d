"""Bitmap text: widths, shortening on glyph boundaries, wrapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from appliance.indicator import font


def test_font_width_counts_glyphs_and_gaps():
    assert font.width("") == 0
    assert font.width("A") == 5
    assert font.width("AA") == 11
    assert font.width("AA", scale=2, gap=2) == 22
    assert font.width("I") < font.width("M")  # proportional, not fixed width


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
    text = "Tunnel down: bastion.example.com:22 refused the connection, retrying"
    lines = font.wrap(text, 126, 2)
    assert len(lines) == 2
    assert lines[0] == "Tunnel down:"  # the next word would not fit on this line
    assert lines[1].startswith("bastion.example.com:22")
    assert lines[1].endswith(font.ELLIPSIS)
    assert all(font.width(line) <= 126 for line in lines)


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
    wrapped = font.wrap(text, max(limit, 6), lines)
    assert len(wrapped) <= lines
    assert all(font.width(line) <= max(limit, 6) for line in wrapped)
