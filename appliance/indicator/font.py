"""Bitmap text for the 128x64 OLED: measure, draw, shorten and wrap whole glyphs.

The glyphs are luma.core's legacy fonts (Python data inside the package), not a TrueType
font: FreeType's rendering changes between Pillow builds, and the golden pictures in the
tests must not. ``BODY`` is the IBM PC's 8x8 code page 437 font: bold strokes and real
descenders ("lag", not "la9"), readable from a metre. ``NARROW`` is the 5x7 LCD font,
for a big word that is too wide in ``BODY``. Characters outside printable ASCII are
transliterated ("é" -> "e") or drawn as "?", never silently left out.

Every function here does work in proportion to the text it is given, and the shortening
ones stop as soon as the line is full: a 30 KB upstream error costs no more than a line.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from luma.core.legacy.font import CP437_FONT, LCD_FONT
from PIL import Image, ImageDraw


@dataclass(frozen=True, eq=False)  # hashed by identity: cheap as a cache key
class Face:
    """A bitmap font: one tuple of column bytes per character code, bit 0 the top row."""

    name: str
    table: tuple[tuple[int, ...], ...]
    height: int  # rows a glyph may use, descenders included
    space: int  # columns of a space, before the gap every glyph gets


BODY = Face("cp437", tuple(tuple(g) for g in CP437_FONT), height=8, space=3)
NARROW = Face("lcd", tuple(tuple(g) for g in LCD_FONT), height=7, space=3)
HEIGHT = BODY.height  # rows a line of body text uses
ELLIPSIS = ".."  # two dots are narrower than "..." and read the same
_BREAKS = "/.:_-,"  # a word too wide for a line is broken after one of these if it can


@lru_cache(maxsize=512)
def glyph(ch: str, face: Face = BODY) -> tuple[int, ...]:
    """Return the columns of one character, blank columns at both sides trimmed."""
    if ch == " ":
        return (0,) * face.space
    cols = list(face.table[ord(ch)])
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


def width(text: str, scale: int = 1, gap: int = 1, face: Face = BODY) -> int:
    """Return the width in pixels of ``text`` drawn at ``scale`` with ``gap`` between glyphs."""
    text = printable(text)
    if not text:
        return 0
    return sum(len(glyph(ch, face)) * scale for ch in text) + gap * (len(text) - 1)


def draw(
    image: Image.Image,
    xy: tuple[int, int],
    text: str,
    scale: int = 1,
    gap: int = 1,
    fill: int = 1,
    face: Face = BODY,
) -> int:
    """Draw ``text`` with its top-left corner at ``xy``; return the width drawn."""
    pen = ImageDraw.Draw(image)
    x0, y0 = xy
    x = x0
    for ch in printable(text):
        for col in glyph(ch, face):
            for row in range(face.height):
                if col >> row & 1:
                    top = y0 + row * scale
                    pen.rectangle((x, top, x + scale - 1, top + scale - 1), fill=fill)
            x += scale
        x += gap
    return max(0, x - gap - x0)


def _fitting(text: str, limit: int, scale: int, gap: int, face: Face) -> int:
    """Return how many leading characters of printable ``text`` fit ``limit`` (stops early)."""
    used = -gap
    for n, ch in enumerate(text):
        used += len(glyph(ch, face)) * scale + gap
        if used > limit:
            return n
    return len(text)


def shorten(text: str, limit: int, scale: int = 1, gap: int = 1, face: Face = BODY) -> str:
    """Return ``text``, or its longest prefix of whole glyphs plus "..", that fits ``limit``."""
    text = printable(text)
    n = _fitting(text, limit, scale, gap, face)
    if n == len(text):
        return text
    room = limit - width(ELLIPSIS, scale, gap, face) - gap
    keep = text[: _fitting(text[:n], room, scale, gap, face)].rstrip(" .")
    if keep:
        return keep + ELLIPSIS
    return ELLIPSIS if width(ELLIPSIS, scale, gap, face) <= limit else ""


def shorten_front(text: str, limit: int) -> str:
    """Return ``text``, or ".." plus its longest ending of whole glyphs, that fits ``limit``."""
    text = printable(text)
    n = _fitting(text[::-1], limit, 1, 1, BODY)
    if n == len(text):
        return text
    room = limit - width(ELLIPSIS) - 1
    keep = text[len(text) - _fitting(text[::-1][:n], room, 1, 1, BODY) :].lstrip(" .")
    if keep:
        return ELLIPSIS + keep
    return ELLIPSIS if width(ELLIPSIS) <= limit else ""


def _lines(words: list[str], limit: int, lines: int) -> tuple[list[str], int]:
    """Fill up to ``lines`` lines greedily; return them and how many words were used."""
    out: list[str] = []
    current = ""
    used = 0
    while used < len(words) and len(out) < lines:
        word = words[used]
        joined = f"{current} {word}" if current else word
        if _fitting(joined, limit, 1, 1, BODY) == len(joined):
            current, used = joined, used + 1
        elif current:
            out.append(current)
            current = ""
        else:  # one word wider than the line: break it, after punctuation if it can
            cut = max(1, _fitting(word, limit, 1, 1, BODY))
            soft = max(word.rfind(p, 0, cut) for p in _BREAKS) + 1
            cut = soft if soft > cut // 2 else cut
            out.append(word[:cut])
            words[used] = word[cut:]
    if current:  # a line is only started when there is room for it
        out.append(current)
    return out, used


def fits(text: str, limit: int, lines: int) -> bool:
    """Return whether ``text`` wraps into ``lines`` lines of ``limit`` without being cut."""
    words = printable(text).split()
    return _lines(words, limit, lines)[1] == len(words)


def wrap(text: str, limit: int, lines: int) -> list[str]:
    """Return ``text`` broken at spaces into at most ``lines`` lines that fit ``limit``.

    A word wider than a line is broken between glyphs; text left over after the last
    line is marked with "..".
    """
    words = printable(text).split()
    out, used = _lines(words, limit, lines)
    if used < len(words) and out:
        # Only the start of what is left can show: a line's worth of it is enough.
        rest = " ".join(words[used : used + limit])
        out[-1] = shorten(f"{out[-1]} {rest}", limit)
    return out


def wrap_end(text: str, limit: int, lines: int) -> list[str]:
    """Return the end of ``text`` in at most ``lines`` lines, marked ".." where it was cut.

    For upstream errors, whose cause comes last ("...: Connection refused").
    """
    words = printable(text).split()
    whole, used = _lines(list(words), limit, lines)
    if used == len(words):
        return whole
    # Fill the lines backwards from the last word: reverse the words and each line.
    backwards, used = _lines([w[::-1] for w in reversed(words)], limit, lines)
    out = [line[::-1] for line in reversed(backwards)]
    if out:  # mark the cut, dropping whole words from the front to make room for the mark
        head = out[0].split(" ")
        while len(head) > 1 and width(ELLIPSIS + " ".join(head)) > limit:
            head.pop(0)
        out[0] = shorten_front(ELLIPSIS + " ".join(head), limit)
    return out
