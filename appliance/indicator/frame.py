"""Draw what the OLED shows: a pure function of the status, shared with the status page.

The picture is 128x64 in mode "1". Everything is drawn inside a 126x62 box one pixel in
from each edge, so the display can shift it a pixel either way against burn-in without
cutting anything off (see ``display.shifted``).

The screen holds the state word in large type and five lines of 8x8 text. What goes on
them, most important first: when the state began ("since", local time, the zone once),
the page's address, the cause, the agent when it is down, the worst table and its lag.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Iterable
from datetime import UTC, datetime, tzinfo
from typing import Any

from PIL import Image

from ..clock import format_duration, local_time
from . import font
from .view import agent_running, never_synced, parse_time, word_for, worst_table

SIZE = (128, 64)
MARGIN = 1
BOX = (SIZE[0] - 2 * MARGIN, SIZE[1] - 2 * MARGIN)  # where content may go
# The 8x8 font leaves its bottom row to descenders, as the PC's text screens did: lines
# touch, and read as they did there. The last line is the address, which has none.
LINE = font.HEIGHT  # pitch of the body lines
BIG = 2  # scale of the state word
TOP = 15  # first body line: under the state word (14 rows) and a 1-row gap
LINES = 6  # body lines that fit under the state word
CAP = 500  # characters of upstream text read at all: a 30 KB error costs no more than this
_TIME = re.compile(r"\d\d:\d\d")


class _Canvas:
    """A frame plus the drawing calls the layouts need, in content-box coordinates."""

    def __init__(self) -> None:
        self.image = Image.new("1", SIZE, 0)

    def text(
        self, x: int, y: int, text: str, scale: int = 1, gap: int = 1, face: font.Face = font.BODY
    ) -> int:
        return font.draw(self.image, (MARGIN + x, MARGIN + y), text, scale, gap, face=face)

    def line(self, y: int, text: str) -> None:
        """Draw one body line, in the narrow face when only that fits, else shortened."""
        if font.width(text) > BOX[0] and font.width(text, face=font.NARROW) <= BOX[0]:
            self.text(0, y, text, face=font.NARROW)  # 7 rows: on the body's capital line
        else:
            self.text(0, y, font.shorten(text, BOX[0]))

    def big(self, text: str) -> int:
        """Draw ``text`` as large as it fits on the top row; return where it ends."""
        for face, scale, gap in ((font.BODY, BIG, BIG), (font.BODY, BIG, 1), (font.NARROW, BIG, 1)):
            if font.width(text, scale, gap, face) <= BOX[0]:
                return self.text(0, 0, text, scale, gap, face)
        return self.text(0, 4, font.shorten(text, BOX[0]))

    def clip(self) -> Image.Image:
        """Return the picture with nothing outside the content box (a last line's descenders)."""
        out = Image.new("1", SIZE, 0)
        box = (MARGIN, MARGIN, MARGIN + BOX[0], MARGIN + BOX[1])
        out.paste(self.image.crop(box), box[:2])
        return out

    def badge(self, x: int, y: int, text: str) -> None:
        """Draw ``text`` black on a white box (a label that stands out)."""
        w = font.width(text)
        box = (MARGIN + x, MARGIN + y, MARGIN + x + w + 2, MARGIN + y + font.HEIGHT + 1)
        self.image.paste(1, box)
        font.draw(self.image, (MARGIN + x + 1, MARGIN + y + 1), text, fill=0)


def upstream(text: object) -> str:
    """Return upstream text capped at ``CAP`` characters, before any layout looks at it."""
    return str(text or "")[:CAP]


class _Times:
    """Times as people read them here; the zone goes on the first one only (it is one zone)."""

    def __init__(self, now: datetime, tz: tzinfo | None) -> None:
        self.now, self.tz, self.zone_shown = now, tz, False

    def __call__(self, when: datetime) -> str:
        text = local_time(when, self.now, self.tz, seconds=False, zone=not self.zone_shown)
        self.zone_shown = True
        return text


def _since_lines(status: dict[str, Any], times: _Times) -> list[str]:
    """Return "since 14:02 CET" ("until 16:00 CET" in maintenance: when it should be over),
    or two lines when a date makes it too wide for one."""
    window = (status.get("maintenance") or {}).get("active") or {}
    until = parse_time(window.get("end")) if status.get("state") == "maintenance" else None
    since = parse_time(status.get("since"))
    if until is not None:
        text = f"until {times(until)}"
    elif since is not None:
        text = f"since {times(since)}"
    else:
        return []
    if font.width(text) <= BOX[0]:
        return [text]
    clock = _TIME.search(text)  # break before the time: "since 21 Nov" / "14:02 CET"
    if clock is None:
        return font.wrap(text, BOX[0], 2)
    return [text[: clock.start()].rstrip(), text[clock.start() :]]


def _cause_lines(reason: str, lines: int) -> list[str]:
    """Return the reason in ``lines`` lines: whole if it fits, else its category and cause.

    An upstream error is a chain ("Database unreachable: database unreachable at h:5432:
    connection ... failed: Connection refused\\n hints. Advice."): the category comes
    first and the cause last, so a long one keeps the category, drops the category said
    again, the hints and the advice (the page has them all), and cuts the chain from the
    front so its end, the cause, stays.
    """
    head, sep, rest = upstream(reason).partition(": ")
    if sep and rest.lower().startswith(head.lower()):  # "Database unreachable: database ..."
        rest = rest[len(head) :].lstrip(" :")
    text = " ".join(font.printable(f"{head}{sep}{rest}").split())
    if lines <= 0 or not text:
        return []
    # The chain's first line and sentence: the hints and advice after it are for the page.
    rest = next((part for part in rest.splitlines() if part.strip()), "")
    rest = re.split(r"(?<=[.?!])\s+(?=[A-Z])", rest.strip())[0].rstrip(" .")
    if font.fits(text, BOX[0], lines) or ": " not in rest:  # prose reads from its start
        return font.wrap(text, BOX[0], lines)
    head = " ".join(font.printable(head).split())
    # The longest ending that fits beside the category: whole links of the chain first
    # ("Database unreachable: Connection refused"), else words, marked where cut.
    links = [" ".join(font.printable(link).split()) for link in rest.split(": ")]
    words = " ".join(links).split()
    candidates = [": ".join(links[-n:]) for n in range(1, len(links) + 1)]
    best = _longest_fitting([f"{head}: {tail}" for tail in candidates], lines)
    if not best:
        tails = (" ".join(words[-n:]) for n in range(1, len(words)))  # built only as tried
        best = _longest_fitting((f"{head}: {font.ELLIPSIS}{tail}" for tail in tails), lines)
    if best:
        return best
    # The category alone fills a line: the cause gets the others.
    cause = _longest_fitting(candidates, lines - 1) or font.wrap_end(rest, BOX[0], lines - 1)
    return [font.shorten(f"{head}:", BOX[0]), *cause]


def _longest_fitting(candidates: Iterable[str], lines: int) -> list[str]:
    """Return the last of ``candidates`` (each longer than the one before) that fits, wrapped."""
    best: list[str] = []
    for text in candidates:
        if not font.fits(text, BOX[0], lines):
            break
        best = font.wrap(text, BOX[0], lines)
    return best


def _agent_line(status: dict[str, Any], times: _Times) -> str | None:
    """Return a line about the sync agent when it is not running, else None."""
    if status.get("state") == "unknown" or agent_running(status):
        return None
    beat = parse_time((status.get("agent") or {}).get("last_heartbeat"))
    if beat is None:
        return "Sync not running"
    when = times(beat)
    return next(
        (t for t in (f"Sync stopped {when}", f"Sync down {when}") if font.width(t) <= BOX[0]),
        "Sync not running",
    )


def _table_line(status: dict[str, Any]) -> str:
    """Return the worst table with its lag (the lag is never shortened away)."""
    table = worst_table(status)
    if table is None:
        return "No tables reported"
    lag = table.get("lag_seconds")
    if not isinstance(lag, int | float) or not math.isfinite(lag):
        lag = None  # a missing or nonsensical lag is shown as none, never as a crash
    if table.get("frozen"):
        detail = f": frozen {format_duration(lag)}" if lag is not None else ": frozen"
    elif lag is None and table.get("last_sync") is None:
        detail = ": first sync" if never_synced(status) else ": never synced"
    else:
        detail = f": lag {format_duration(lag or 0)}"
    name = upstream(table.get("name") or "?")
    name = name.removeprefix("public.")  # the default schema says nothing on a small screen
    room = BOX[0] - font.width(detail) - 1
    if font.width(name) > room:
        name = name.rpartition(".")[2]  # the table tells more than its schema
    return font.shorten(name, room) + detail


def _body(status: dict[str, Any], address: str, times: _Times) -> list[str]:
    """Return the body lines, top to bottom, the least important left out when short of room."""
    since = _since_lines(status, times)
    agent = _agent_line(status, times)
    middle = [agent] if agent else []
    room = LINES - len(since) - len(middle) - 1  # the address always shows
    window = (status.get("maintenance") or {}).get("active") or {}
    # In maintenance the "until" line says when; what is being done says more than the reason.
    why = window.get("reason") if status.get("state") == "maintenance" and window else status.get("reason")
    cause = _cause_lines(str(why or ""), max(room, 1))
    middle += cause
    if len(middle) < LINES - len(since) - 1 and status.get("state") != "unknown":
        # The worst table only where the cause left room.
        middle.append(_table_line(status))
    middle += [""] * (LINES - len(since) - 1 - len(middle))
    return [*since, *middle[: LINES - len(since) - 1], address]


def render_frame(
    status: dict[str, Any], address: str, now: datetime | None = None, tz: tzinfo | None = None
) -> Image.Image:
    """Return the 128x64 mode "1" picture of a status document.

    ``address`` is the status page's "IP:port"; ``now`` decides whether dates are
    shown next to times; ``tz`` is the zone times are shown in (default: the machine's).
    """
    now = now or datetime.now(UTC)
    c = _Canvas()
    state = str(status.get("state") or "unknown")
    end = c.big(upstream(word_for(status))[:40])
    body = _body(status, upstream(address), _Times(now, tz))
    for i, text in enumerate(body):
        c.line(TOP + i * LINE, text)
    badge = font.width("ACK") + 2
    if status.get("acknowledged") and state not in ("ok", "unknown"):
        if BOX[0] - badge >= end + 4:
            c.badge(BOX[0] - badge, 3, "ACK")
        elif body and font.width(body[0]) + 4 + badge <= BOX[0]:
            c.badge(BOX[0] - badge, TOP - 1, "ACK")
    return c.clip()


def _url_lines(url: str) -> list[str]:
    """Return the URL on one line, or broken before the port when it is too wide."""
    url = url.removesuffix("/")
    if font.width(url) <= BOX[0]:
        return [url]
    head, colon, port = url.rpartition(":")
    return [head, colon + port] if head and "//" not in port else font.wrap(url, BOX[0], 2)


def render_address_frame(ip: str | None, url: str | None) -> Image.Image:
    """Return the picture shown while the button is held: the IP and the status page's URL."""
    c = _Canvas()
    c.big(upstream(ip)[:60] if ip else "NO NETWORK")
    if ip and url:
        lines = ["Status page:", *_url_lines(upstream(url))]
    else:
        lines = font.wrap("No address. Check the network cable.", BOX[0], 3)
    hints = ["Press: acknowledge", "Hold: this screen"]  # what the button does
    for i, text in enumerate(lines[: LINES - len(hints)]):
        c.line(TOP + i * LINE, text)
    for i, text in enumerate(hints, start=LINES - len(hints)):
        c.line(TOP + i * LINE, text)
    return c.clip()


def frame_png(
    status: dict[str, Any], address: str, now: datetime | None = None, tz: tzinfo | None = None
) -> bytes:
    """Return ``render_frame``'s picture as PNG bytes (for the status page)."""
    buf = io.BytesIO()
    render_frame(status, address, now, tz).save(buf, format="PNG")
    return buf.getvalue()
