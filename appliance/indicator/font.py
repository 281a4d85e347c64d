"""Bitmap text for the 128x64 OLED: measure, draw, shorten and wrap whole glyphs.

The glyphs are luma.core's ``LCD_FONT`` (5x7 pixels, stored as Python data inside the
package), not a TrueType font: FreeType's rendering changes between Pillow builds, and
the golden pictures in the tests must not. Characters outside printable ASCII are
transliterated ("é" -> "e") or drawn as "?", never silently left out.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

from luma.core.legacy.font import LCD_FONT
from PIL import Image, ImageDraw

HEIGHT = 7  # rows a glyph uses at scale 1 (LCD_FONT draws in bits 0..6)
ELLIPSIS = ".."  # the font has no "…"; two dots are 3 pixels wide and read the same
_SPACE = 3  # columns of a space, before the 1-column gap every glyph gets


@lru_cache(maxsize=256)
def glyph(ch: str) -> tuple[int, ...]:
    """Return the columns of one character, blank columns at both sides trimmed."""
    if ch == " ":
        return (0,) * _SPACE
    cols = list(LCD_FONT[ord(ch)])
    while cols and not cols[-1]:
        cols.pop()
    while cols and not cols[0]:
        cols.pop(0)
    return tuple(cols)


def printable(text: str) -> str:
    """Return ``text`` as characters the font can draw (ASCII; others as "?")."""
    out = []
    for ch in str(text):
        if " " <= ch <= "~":
            out.append(ch)
        elif ch in "\t\r\n":
            out.append(" ")
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(plain if plain and all(" " <= c <= "~" for c in plain) else "?")
    return "".join(out)


def width(text: str, scale: int = 1, gap: int = 1) -> int:
    """Return the width in pixels of ``text`` drawn at ``scale`` with ``gap`` between glyphs."""
    text = printable(text)
    if not text:
        return 0
    return sum(len(glyph(ch)) * scale for ch in text) + gap * (len(text) - 1)


def draw(
    image: Image.Image, xy: tuple[int, int], text: str, scale: int = 1, gap: int = 1, fill: int = 1
) -> int:
    """Draw ``text`` with its top-left corner at ``xy``; return the width drawn."""
    pen = ImageDraw.Draw(image)
    x0, y0 = xy
    x = x0
    for ch in printable(text):
        for col in glyph(ch):
            for row in range(HEIGHT + 1):
                if col >> row & 1:
                    top = y0 + row * scale
                    pen.rectangle((x, top, x + scale - 1, top + scale - 1), fill=fill)
            x += scale
        x += gap
    return max(0, x - gap - x0)


def shorten(text: str, limit: int, scale: int = 1, gap: int = 1) -> str:
    """Return ``text``, or its longest prefix of whole glyphs plus "..", that fits ``limit``."""
    text = printable(text)
    if width(text, scale, gap) <= limit:
        return text
    keep = text
    while keep:
        keep = keep[:-1]
        candidate = keep.rstrip(" .") + ELLIPSIS
        if width(candidate, scale, gap) <= limit:
            return candidate
    return ELLIPSIS if width(ELLIPSIS, scale, gap) <= limit else ""


def wrap(text: str, limit: int, lines: int) -> list[str]:
    """Return ``text`` broken at spaces into at most ``lines`` lines that fit ``limit``.

    A word wider than a line is broken between glyphs; text left over after the last
    line is marked with "..".
    """
    out: list[str] = []
    words = printable(text).split()
    current = ""
    while words:
        word = words[0]
        joined = f"{current} {word}" if current else word
        if width(joined) <= limit:
            current, words = joined, words[1:]
            continue
        if current:
            out.append(current)
            current = ""
        else:  # one word wider than the line: break it between glyphs
            cut = max((n for n in range(1, len(word) + 1) if width(word[:n]) <= limit), default=1)
            out.append(word[:cut])
            words[0] = word[cut:]
        if len(out) == lines:
            break
    if current and len(out) < lines:
        out.append(current)
        current = ""
    if words or current:
        rest = " ".join([current, *words]).strip()
        out[-1] = shorten(f"{out[-1]} {rest}", limit)
    return out[:lines]
