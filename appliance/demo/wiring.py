"""The wiring diagram: the three LEDs, the button and the OLED on the Pi's 40-pin header.

Drawn as SVG text from ``[indicator]`` (the pins are the config's, never written here a
second time), so the picture in the README changes when a default does, and the same
settings always give the same bytes. The header is drawn as it sits on the board: odd
pins in the left column, even pins in the right, pin 1 at the top. A part goes on the
side of its pin and is wired straight across to it, so no two wires cross; each side
has one ground rail tied to the nearest GND pin of that side.
"""

from __future__ import annotations

from html import escape

from ..config import IndicatorSettings
from ..config.settings import SECTIONS
from ..errors import ApplianceError

# Physical pin -> what it is (BCM numbers as "GPIOn"). The Raspberry Pi's 40-pin header.
HEADER = {
    1: "3V3", 2: "5V", 3: "GPIO2 SDA1", 4: "5V", 5: "GPIO3 SCL1", 6: "GND",
    7: "GPIO4", 8: "GPIO14 TXD", 9: "GND", 10: "GPIO15 RXD", 11: "GPIO17", 12: "GPIO18",
    13: "GPIO27", 14: "GND", 15: "GPIO22", 16: "GPIO23", 17: "3V3", 18: "GPIO24",
    19: "GPIO10 MOSI", 20: "GND", 21: "GPIO9 MISO", 22: "GPIO25", 23: "GPIO11 SCLK", 24: "GPIO8 CE0",
    25: "GND", 26: "GPIO7 CE1", 27: "GPIO0 ID_SD", 28: "GPIO1 ID_SC", 29: "GPIO5", 30: "GND",
    31: "GPIO6", 32: "GPIO12", 33: "GPIO13", 34: "GND", 35: "GPIO19", 36: "GPIO16",
    37: "GPIO26", 38: "GPIO20", 39: "GND", 40: "GPIO21",
}  # fmt: skip
PHYSICAL = {int(name.split()[0][4:]): pin for pin, name in HEADER.items() if name.startswith("GPIO")}
I2C_BUS_1 = {"VCC": 1, "SDA": 3, "SCL": 5}  # what the OLED module's pins go to
LED_COLOURS = {"red": "#e53935", "amber": "#ffb300", "green": "#43a047"}
PIN_COLOURS = {"3V3": "#f4a340", "5V": "#e57373", "GND": "#555555"}
GPIO_COLOUR = "#7cb342"

CX, ROW, TOP = 490, 24, 118  # the header's middle, pin pitch, y of pin 1
PIN_DX, LABEL_W = 14, 124  # pin centre from the middle; label box width
EDGE = PIN_DX + 12 + LABEL_W  # from the middle to where a wire leaves a label
RAIL = CX - 40  # ground rail, from the middle (40 px in from the canvas edge)


def default_indicator() -> IndicatorSettings:
    """Return ``[indicator]`` as the settings table's defaults give it."""
    defaults = {s.name: s.default for s in SECTIONS["indicator"] if s.kind != "duration"}
    return IndicatorSettings(**defaults)


class Drawing:
    """SVG elements in drawing order; ``side`` mirrors x for the right-hand column."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, element: str) -> None:
        self.parts.append(element)

    def text(
        self, x: float, y: float, text: str, size: int = 11, anchor: str = "start", **attrs: str
    ) -> None:
        extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
        place = f'x="{x:g}" y="{y:g}" font-size="{size}" text-anchor="{anchor}"'
        self.add(f"<text {place}{extra}>{escape(text)}</text>")

    def line(
        self, x1: float, y1: float, x2: float, y2: float, colour: str = "#222", width: float = 2
    ) -> None:
        ends = f'x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}"'
        self.add(f'<line {ends} stroke="{colour}" stroke-width="{width:g}"/>')

    def svg(self, width: int, height: int) -> str:
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">\n'
            # White, not transparent: the dark text must stay readable on a dark README.
            f'<rect width="{width}" height="{height}" fill="#ffffff"/>\n'
        )
        return head + "\n".join(self.parts) + "\n</svg>\n"


def _row_y(pin: int) -> int:
    return TOP + (pin - 1) // 2 * ROW


def _side(pin: int) -> int:
    """Return -1 for the left (odd) column, +1 for the right (even) one."""
    return -1 if pin % 2 else 1


def _x(pin: int, from_middle: float) -> float:
    """Return the x of a point ``from_middle`` pixels out from the header on ``pin``'s side."""
    return CX + _side(pin) * from_middle


def _header(d: Drawing, used: dict[int, str]) -> None:
    d.add(f'<rect x="{CX - 30}" y="{TOP - 18}" width="60" height="{20 * ROW + 12}" rx="6" fill="#2e2e2e"/>')
    for pin, name in HEADER.items():
        y, kind = _row_y(pin), name.split()[0]
        colour = PIN_COLOURS.get(kind, GPIO_COLOUR)
        faint = pin not in used and kind.startswith("GPIO")
        box_x = _x(pin, PIN_DX + 12 + (LABEL_W if _side(pin) < 0 else 0))
        d.add(
            f'<rect x="{box_x:g}" y="{y - 9}" width="{LABEL_W}" height="18" rx="3" fill="{colour}" '
            f'fill-opacity="{0.25 if faint else 0.9:g}"/>'
        )
        label = name if not kind.startswith("GPIO") else f"{name} (BCM {kind[4:]})"
        d.text(
            _x(pin, PIN_DX + 18),
            y + 4,
            label,
            10,
            "end" if _side(pin) < 0 else "start",
            fill="#888888" if faint else "#111111",
        )
        shape = "rect" if pin == 1 else "circle"  # pin 1's pad is square on the board
        if shape == "rect":
            d.add(f'<rect x="{_x(pin, PIN_DX) - 9:g}" y="{y - 9}" width="18" height="18" fill="#d4af37"/>')
        else:
            d.add(f'<circle cx="{_x(pin, PIN_DX):g}" cy="{y}" r="9" fill="#d4af37"/>')
        d.text(_x(pin, PIN_DX), y + 3.5, str(pin), 9, "middle", fill="#111111", font_weight="bold")


def _resistor(d: Drawing, pin: int, at: float) -> None:
    """Draw a 330 ohm resistor centred ``at`` pixels from the middle on ``pin``'s row."""
    x, y = _x(pin, at), _row_y(pin)
    d.add(f'<rect x="{x - 24:g}" y="{y - 7}" width="48" height="14" rx="2" fill="#f5e6c8" stroke="#222"/>')
    d.text(x, y + 4, "330 Ω", 9, "middle", fill="#111111")


def _led(d: Drawing, pin: int, at: float, colour: str) -> None:
    """Draw an LED ``at`` pixels out, anode towards the header, cathode towards the rail."""
    s, y = _side(pin), _row_y(pin)
    anode, cathode = _x(pin, at - 10), _x(pin, at + 10)
    d.add(
        f'<polygon points="{anode:g},{y - 8} {anode:g},{y + 8} {cathode:g},{y}" '
        f'fill="{LED_COLOURS.get(colour, "#999")}" stroke="#222"/>'
    )
    d.line(cathode, y - 8, cathode, y + 8)
    for dx in (-3, 3):  # the two rays of a light-emitting diode
        x = _x(pin, at + dx)
        d.line(x, y - 10, x + s * 5, y - 16, "#222", 1)


def _button(d: Drawing, pin: int, at: float) -> None:
    """Draw a push button (normally open) ``at`` pixels out on ``pin``'s row."""
    y = _row_y(pin)
    a, b = _x(pin, at - 14), _x(pin, at + 14)
    for x in (a, b):
        d.add(f'<circle cx="{x:g}" cy="{y}" r="3" fill="#fff" stroke="#222" stroke-width="2"/>')
    d.line(a, y - 8, b, y - 8)
    d.line((a + b) / 2, y - 8, (a + b) / 2, y - 13)


def _chain(d: Drawing, pin: int, part: str, settings: IndicatorSettings) -> None:
    """Wire one LED or the button from its pin's label out to the ground rail."""
    y, s = _row_y(pin), _side(pin)
    if part == "button":
        d.line(_x(pin, EDGE), y, _x(pin, 186), y)
        _button(d, pin, 200)
        d.line(_x(pin, 214), y, _x(pin, RAIL), y)
        caption = f"button = {settings.button} (internal pull-up, no resistor)"
    else:
        d.line(_x(pin, EDGE), y, _x(pin, 176), y)
        _resistor(d, pin, 200)
        d.line(_x(pin, 224), y, _x(pin, 260), y)
        _led(d, pin, 270, part)
        d.line(_x(pin, 280), y, _x(pin, RAIL), y)
        caption = f"{part} LED: {part} = {getattr(settings, part)}"
    d.text(_x(pin, RAIL - 8), y - 4, caption, 10, "start" if s < 0 else "end", fill="#111111")


def _oled(d: Drawing, settings: IndicatorSettings) -> None:
    """Draw the OLED module left of pins 1, 3 and 5, its GND to the left rail."""
    if settings.i2c_port != 1:
        raise ApplianceError(
            f"the wiring diagram draws the OLED on I2C bus 1 (GPIO2 and GPIO3, pins 3 and 5); "
            f"[indicator] i2c_port = {settings.i2c_port} is wired as its device-tree overlay "
            f"says. Draw it by hand, or set i2c_port = 1."
        )
    right, width = CX - 250, 150
    top, bottom = _row_y(1) - 14, _row_y(5) + 14
    d.add(
        f'<rect x="{right - width}" y="{top}" width="{width}" height="{bottom - top}" rx="4" '
        f'fill="#1a237e" stroke="#222"/>'
    )
    name = settings.oled.upper()
    middle = right - width / 2 - 6
    d.text(middle, top + 18, f"OLED {name}", 11, "middle", fill="#ffffff", font_weight="bold")
    d.text(middle, top + 34, f"128x64, I2C 0x{settings.i2c_address:02X}", 10, "middle", fill="#ffffff")
    for label, pin in I2C_BUS_1.items():
        y = _row_y(pin)
        d.line(_x(pin, EDGE), y, right, y)
        d.text(right - 4, y + 4, label, 9, "end", fill="#ffffff")
    y = _row_y(5)
    d.line(right - width, y, CX - RAIL, y)
    d.text(right - width + 4, y + 4, "GND", 9, "start", fill="#ffffff")


def _rail(d: Drawing, side: int, rows: list[int]) -> None:
    """Draw one side's ground rail over ``rows`` and tie it to the side's nearest GND pin."""
    grounds = [p for p, name in HEADER.items() if name == "GND" and _side(p) == side]
    middle = sum(rows) / len(rows)
    ground = min(grounds, key=lambda p: abs(_row_y(p) - middle))
    x, y = _x(ground, RAIL), _row_y(ground)
    d.line(_x(ground, EDGE), y, x, y)
    d.text(_x(ground, RAIL - 8), y - 4, "ground rail", 10, "start" if side < 0 else "end", fill="#111111")
    ys = [*rows, y]
    d.line(x, min(ys), x, max(ys), "#222", 3)
    for row in rows:
        d.add(f'<circle cx="{x}" cy="{row}" r="3.5" fill="#222"/>')


def wiring_svg(settings: IndicatorSettings) -> str:
    """Return the wiring diagram of ``[indicator]`` as SVG text (the same bytes every time)."""
    parts = {PHYSICAL[getattr(settings, name)]: name for name in ("red", "amber", "green", "button")}
    used = dict(parts)
    if settings.oled != "none":
        used.update({pin: "oled" for pin in I2C_BUS_1.values()})
    d = Drawing()
    parts_named = (
        "the lights, the button and the OLED" if settings.oled != "none" else "the lights and the button"
    )
    d.text(20, 30, f"{parts_named.capitalize()} on the Pi's 40-pin header", 16, font_weight="bold")
    keys = ", ".join(f"{n} = {getattr(settings, n)}" for n in ("red", "amber", "green", "button"))
    bus = f" (I2C bus {settings.i2c_port})" if settings.oled != "none" else ""
    d.text(20, 52, f'From [indicator]: {keys}, oled = "{settings.oled}"{bus}.', 12)
    d.text(
        20,
        72,
        "Numbers on the pins are physical pin numbers; GPIOn (BCM n) is the number the config uses.",
        12,
    )
    _header(d, used)
    rails: dict[int, list[int]] = {-1: [], 1: []}
    for pin, part in sorted(parts.items()):
        _chain(d, pin, part, settings)
        rails[_side(pin)].append(_row_y(pin))
    if settings.oled != "none":
        _oled(d, settings)
        rails[-1].append(_row_y(5))
    for side, rows in rails.items():
        if rows:
            _rail(d, side, rows)
    bottom = _row_y(39) + 40
    notes = [
        "LEDs: the long leg (anode) towards the resistor and the pin, the short leg (cathode) to ground;",
        "any resistor from 220 to 330 Ω. The button joins its pin to ground when pressed.",
        "Pin 1 is the square pad, at the end of the header nearest the SD card.",
    ]
    for i, note in enumerate(notes):
        d.text(20, bottom + i * 18, note, 12)
    # As wide as the parts need: the right half only when a part sits on an even pin.
    width = 2 * CX if rails[1] else CX + EDGE + 30
    return d.svg(width, bottom + len(notes) * 18 + 10)
