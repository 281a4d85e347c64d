"""Draw what the OLED shows: a pure function of the status, shared with the status page.

The picture is 128x64 in mode "1". Everything is drawn inside a 126x62 box one pixel in
from each edge, so the display can shift it a pixel either way against burn-in without
cutting anything off (see ``display.Screen``).
"""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, tzinfo
from typing import Any

from PIL import Image

from ..clock import format_duration
from . import font
from .view import WORDS, agent_running, parse_time, worst_table

SIZE = (128, 64)
MARGIN = 1
BOX = (SIZE[0] - 2 * MARGIN, SIZE[1] - 2 * MARGIN)  # where content may go
LINE = font.HEIGHT + 2  # pitch of the small lines
BIG = 2  # scale of the state word
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class _Canvas:
    """A frame plus the drawing calls the layouts need, in content-box coordinates."""

    def __init__(self) -> None:
        self.image = Image.new("1", SIZE, 0)

    def text(self, x: int, y: int, text: str, scale: int = 1, gap: int = 1) -> int:
        return font.draw(self.image, (MARGIN + x, MARGIN + y), text, scale, gap)

    def line(self, y: int, text: str) -> None:
        """Draw one small line, shortened to fit the box."""
        self.text(0, y, font.shorten(text, BOX[0]))

    def badge(self, x: int, y: int, text: str) -> None:
        """Draw ``text`` black on a white box (a label that stands out)."""
        w = font.width(text)
        box = (MARGIN + x, MARGIN + y, MARGIN + x + w + 2, MARGIN + y + font.HEIGHT + 2)
        self.image.paste(1, box)
        font.draw(self.image, (MARGIN + x + 1, MARGIN + y + 1), text, fill=0)


def _big_fit(text: str, limit: int) -> tuple[int, int] | None:
    """Return (scale, gap) for the largest way ``text`` fits ``limit``, or None."""
    for scale, gap in ((BIG, BIG), (BIG, 1), (1, 1)):
        if font.width(text, scale, gap) <= limit:
            return scale, gap
    return None


def _clock(when: datetime | None, now: datetime, tz: tzinfo | None, date_too: bool) -> str:
    """Return a short local time: "14:02" today, else "21 Nov" or "21 Nov 14:02"."""
    if when is None:
        return "never"
    local, today = when.astimezone(tz), now.astimezone(tz)
    hhmm = f"{local:%H:%M}"
    if local.date() == today.date():
        return hhmm
    day = f"{local.day} {MONTHS[local.month - 1]}"
    return f"{day} {hhmm}" if date_too else day


def _top_row(c: _Canvas, status: dict[str, Any], now: datetime, tz: tzinfo | None) -> None:
    """Draw the state word large, then "since" and an ACK badge where they fit."""
    state = str(status.get("state") or "unknown")
    word = WORDS.get(state, font.printable(state).upper())
    scale, gap = _big_fit(word, BOX[0]) or (1, 1)
    word = font.shorten(word, BOX[0], scale, gap)
    left = c.text(0, 0 if scale == BIG else 4, word, scale, gap) + 4
    right = BOX[0]  # extras go right to left, each only if it fits whole
    since = parse_time(status.get("since"))
    if since is not None:
        short = _clock(since, now, tz, date_too=False)
        for text in (f"since {short}", short):
            if right - font.width(text) >= left:
                right -= c.text(right - font.width(text), 7, text) + 4
                break
    badge = font.width("ACK") + 2
    if status.get("acknowledged") and state not in ("ok", "unknown") and right - badge >= left:
        c.badge(right - badge, 5, "ACK")


def _reason_lines(status: dict[str, Any], now: datetime, tz: tzinfo | None) -> list[str]:
    """Return the two lines under the state word: why, and whether the agent runs."""
    reason = str(status.get("reason") or "")
    if status.get("state") != "unknown" and not agent_running(status):
        beat = parse_time((status.get("agent") or {}).get("last_heartbeat"))
        head = f"Agent down since {_clock(beat, now, tz, True)}" if beat else "Agent not running"
        return [font.shorten(head, BOX[0]), *font.wrap(reason, BOX[0], 1)]
    return font.wrap(reason, BOX[0], 2)


def _table_lines(status: dict[str, Any], now: datetime, tz: tzinfo | None) -> list[str]:
    """Return the worst table with its lag, and the time of its last good sync."""
    table = worst_table(status)
    if table is None:
        return ["No tables reported", ""]
    lag = table.get("lag_seconds")
    if not isinstance(lag, int | float) or not math.isfinite(lag):
        lag = None  # a missing or nonsensical lag is shown as none, never as a crash
    if table.get("frozen"):
        detail = f": frozen {format_duration(lag)}" if lag is not None else ": frozen"
    elif lag is None and table.get("last_sync") is None:
        detail = ": never synced"
    else:
        detail = f": lag {format_duration(lag or 0)}"
    name = str(table.get("name") or "?")
    name = name.removeprefix("public.")  # the default schema says nothing on a small screen
    room = BOX[0] - font.width(detail) - 1
    if font.width(name) > room:
        name = name.rpartition(".")[2]  # the table tells more than its schema
    # Shorten the name, never the lag: the lag is what the line is for.
    name = font.shorten(name, room)
    synced = _clock(parse_time(table.get("last_sync")), now, tz, date_too=True)
    return [name + detail, f"Last sync {synced}"]


def render_frame(
    status: dict[str, Any], address: str, now: datetime | None = None, tz: tzinfo | None = None
) -> Image.Image:
    """Return the 128x64 mode "1" picture of a status document.

    ``address`` is the status page's "IP:port"; ``now`` decides whether dates are
    shown next to times; ``tz`` is the zone times are shown in (default: the machine's).
    """
    now = now or datetime.now(UTC)
    c = _Canvas()
    _top_row(c, status, now, tz)
    y = 17
    for text in _reason_lines(status, now, tz):
        c.line(y, text)
        y += LINE
    y = 17 + 2 * LINE
    for text in _table_lines(status, now, tz):
        c.line(y, text)
        y += LINE
    c.line(BOX[1] - font.HEIGHT, address)
    return c.image


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
    head = ip or "NO NETWORK"
    scale, gap = _big_fit(head, BOX[0]) or (1, 1)
    c.text(0, 0 if scale == BIG else 4, font.shorten(head, BOX[0], scale, gap), scale, gap)
    if ip and url:
        lines = ["Status page:", *_url_lines(url)]
    else:
        lines = ["Check the cable", "or the Wi-Fi settings."]
    y = 17
    for text in lines:
        c.line(y, text)
        y += LINE
    c.line(BOX[1] - font.HEIGHT, "Press: ack  Hold: this")
    return c.image


def frame_png(
    status: dict[str, Any], address: str, now: datetime | None = None, tz: tzinfo | None = None
) -> bytes:
    """Return ``render_frame``'s picture as PNG bytes (for the status page)."""
    buf = io.BytesIO()
    render_frame(status, address, now, tz).save(buf, format="PNG")
    return buf.getvalue()
