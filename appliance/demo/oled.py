"""The README's OLED pictures: the indicator's own frames, at 4x, pixel for pixel.

Each frame is drawn by the indicator's pass (``Indicator.tick``) onto luma's dummy display
through the real ``Screen``, so dimming and the burn-in shift are the display code's own.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from luma.core.device import dummy
from PIL import Image

from ..clock import utcnow
from ..config import IndicatorSettings
from ..indicator.address import Address
from ..indicator.controller import Indicator
from ..indicator.display import Screen, shifted
from ..indicator.frame import SIZE
from ..indicator.hardware import BRIGHT

SCALE = 4
# The states' frames (as the status page shows them: unshifted), then the ok frame dimmed
# after a quiet spell and moved one step of the burn-in walk.
OLED_FRAMES = ("ok", "lagging", "outage", "drift", "maintenance", "ok-dimmed", "ok-shifted")


def oled_pictures(
    statuses: dict[str, dict], address: Address, settings: IndicatorSettings, folder: Path
) -> list[Path]:
    """Write ``oled-NAME.png`` for each of ``OLED_FRAMES`` from the status of its state."""
    now, made = utcnow(), []
    for name in OLED_FRAMES:
        state, _, variant = name.partition("-")
        quiet = settings.dim_after if variant == "dimmed" else 0.0
        # Every frame at the same wall time (a later one could cross midnight and change the
        # text); the shifted one then moves by the walk's step the display would be at.
        frame = oled_frame(statuses[state], address, now, settings, quiet=quiet, shift=variant == "shifted")
        frame.save(folder / f"oled-{name}.png", format="PNG", optimize=True)
        made.append(folder / f"oled-{name}.png")
    return made


class _Panel(dummy):
    """luma's dummy display, remembering the contrast it was last set to."""

    def __init__(self, bright: int) -> None:
        super().__init__(width=SIZE[0], height=SIZE[1], mode="1")
        self.level = bright

    def contrast(self, level: int) -> None:
        super().contrast(level)
        self.level = level


def oled_frame(
    status: dict,
    address: Address,
    at: datetime,
    settings: IndicatorSettings,
    quiet: float = 0.0,
    shift: bool = False,
) -> Image.Image:
    """Return what the OLED shows for ``status`` at wall time ``at``, 4x, as a greyscale picture.

    The indicator's own pass draws it onto luma's dummy display through the real ``Screen``;
    ``quiet`` seconds without a press or a new state let the screen dim as it does on site;
    ``shift`` moves the picture by the burn-in walk's step one pixel right and down, with the
    display's own ``shifted`` (the other frames stay unshifted, as the status page shows them).
    """
    bright = BRIGHT.get(settings.oled, 0xCF)
    panel = _Panel(bright)
    clock = [0.0]
    screen = Screen(panel, bright=bright, dim_after=settings.dim_after, blank_after=settings.blank_after)
    with Indicator(
        lambda: status,
        lambda: False,
        None,
        screen=screen,
        address=lambda: address,
        shift_every=0.0,
        wall=lambda: at,
        clock=lambda: clock[0],
    ) as indicator:
        indicator.tick()
        if quiet:
            clock[0] = quiet
            indicator.tick()
        image, level = panel.image.copy(), panel.level
    if shift:
        image = shifted(image, (1, 1))
    # A lit pixel at the panel's contrast: OLED brightness does not follow the contrast
    # register linearly (luma: a low level does not dim to nearly off), so the picture uses
    # the display gamma of 2.2 as an approximation of how it looks, not a measurement.
    lit = round(255 * (level / bright) ** (1 / 2.2))
    grey = image.convert("L").point(lambda v: lit if v else 0)
    return grey.resize((SIZE[0] * SCALE, SIZE[1] * SCALE), Image.Resampling.NEAREST)
