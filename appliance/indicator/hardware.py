"""Find the pins and the display: real ones on a Pi, gpiozero's and luma's stand-ins when asked.

Missing hardware is an ``IndicatorError`` that says what to check, never a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from ..config import IndicatorSettings
from .errors import IndicatorError, NoDisplayError, NoGPIOError

log = logging.getLogger(__name__)

# lgpio first: it is the only one that works on a Pi 5. pigpio needs its daemon, so it is
# used only when named in GPIOZERO_PIN_FACTORY.
DEFAULT_FACTORIES = ("lgpio", "rpigpio", "native")
# The panel's own contrast after power-on (luma's init), to return to after dimming.
BRIGHT = {"ssd1306": 0xCF, "sh1106": 0x7F}


def wants_mock(settings: IndicatorSettings, environ: Mapping[str, str]) -> bool:
    """Return whether to simulate: ``[indicator] mock = true`` or GPIOZERO_PIN_FACTORY=mock."""
    return settings.mock or environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower() == "mock"


def pin_factory(settings: IndicatorSettings, environ: Mapping[str, str]) -> Any:
    """Return a gpiozero pin factory; raise NoGPIOError saying what to check if none works."""
    if wants_mock(settings, environ):
        from gpiozero.pins.mock import MockFactory

        return MockFactory()
    known = {ep.name: ep for ep in entry_points(group="gpiozero_pin_factories")}
    named = environ.get("GPIOZERO_PIN_FACTORY", "").strip().lower()
    reasons = []
    for name in (named,) if named else DEFAULT_FACTORIES:
        if name not in known:
            reasons.append(f"{name}: no such pin factory (known: {', '.join(sorted(known))})")
            continue
        try:
            return known[name].load()()
        except Exception as e:  # each factory fails its own way: ImportError, OSError, ...
            reasons.append(f"{name}: {e}")
    raise NoGPIOError(reasons)


def open_display(settings: IndicatorSettings, mock: bool) -> Any:
    """Return the luma device for ``[indicator] oled`` (None for "none"; ``dummy`` when mock)."""
    if settings.oled == "none":
        return None
    if mock:
        from luma.core.device import dummy

        return dummy(width=128, height=64, mode="1")
    import luma.core.error
    from luma.core.interface.serial import i2c
    from luma.oled.device import sh1106, ssd1306

    serial = None
    try:
        serial = i2c(port=settings.i2c_port, address=settings.i2c_address)
        driver = {"ssd1306": ssd1306, "sh1106": sh1106}[settings.oled]
        return driver(serial, width=128, height=64)
    except (luma.core.error.Error, OSError) as e:
        if serial is not None:
            serial.cleanup()
        raise NoDisplayError(
            settings.oled, settings.i2c_port, settings.i2c_address, str(e) or type(e).__name__
        ) from None


@dataclass
class Hardware:
    """The traffic light, the button and the display, opened together and closed together."""

    factory: Any
    lights: Any  # gpiozero TrafficLights
    button: Any  # gpiozero Button
    display: Any  # luma device, or None
    bright: int
    mock: bool
    display_problem: NoDisplayError | None = None

    def close(self) -> None:
        """Release the pins (the display is released by its ``Screen``)."""
        for device in (self.button, self.lights):
            device.close()
        self.factory.close()

    def __enter__(self) -> Hardware:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_hardware(
    settings: IndicatorSettings, environ: Mapping[str, str], hold_time: float = 2.0, factory: Any = None
) -> Hardware:
    """Open the LEDs, the button and the display of ``[indicator]``.

    ``factory`` is a gpiozero pin factory to use instead of finding one. No GPIO is an
    error (nothing to show on); no display is only a problem recorded in
    ``display_problem``, because the lights alone still tell the site what it needs.
    """
    from gpiozero import Button, TrafficLights

    mock = wants_mock(settings, environ)
    factory = factory if factory is not None else pin_factory(settings, environ)
    pins = f"red={settings.red} amber={settings.amber} green={settings.green} button={settings.button}"
    lights = button = None
    try:
        lights = TrafficLights(settings.red, settings.amber, settings.green, pin_factory=factory)
        button = Button(settings.button, pull_up=True, hold_time=hold_time, pin_factory=factory)
    except Exception as e:  # gpiozero's own errors, OSError, lgpio.error ("GPIO busy"), ...
        for device in (button, lights):
            if device is not None:
                device.close()
        factory.close()
        raise IndicatorError(
            f"Cannot use the GPIO pins of [indicator] ({pins}): {e}. Another program may "
            "hold them (is a second `appliance indicator` running?), or two of the pins "
            "are the same; check the pin numbers (BCM) in [indicator]."
        ) from None
    problem = None
    try:
        display = open_display(settings, mock)
    except NoDisplayError as e:
        display, problem = None, e
        log.warning("%s", e)
    return Hardware(factory, lights, button, display, BRIGHT.get(settings.oled, 0xCF), mock, problem)
