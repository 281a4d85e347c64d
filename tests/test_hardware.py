"""The indicator on a real Raspberry Pi: traffic light, button and OLED wired as in the README.

Skipped unless APPLIANCE_HARDWARE=1. On the Pi:
    APPLIANCE_HARDWARE=1 scripts/test tests/test_hardware.py -s
Add APPLIANCE_HARDWARE_BUTTON=1 to test the button too (press and hold it when asked).
Pins and display come from $APPLIANCE_CONFIG when set, else the defaults of [indicator].
Each pattern and picture stays up for a second so a person can watch them.
"""

from __future__ import annotations

import os
import threading
import time
from datetime import UTC, datetime

import pytest

from appliance.config import load, parse
from appliance.indicator.button import ACK, HOLD, ButtonEvents
from appliance.indicator.display import Screen
from appliance.indicator.frame import render_address_frame, render_frame
from appliance.indicator.hardware import open_hardware
from appliance.indicator.leds import Lights, patterns

pytestmark = pytest.mark.skipif(
    os.environ.get("APPLIANCE_HARDWARE") != "1",
    reason="needs a Raspberry Pi with the indicator wired (set APPLIANCE_HARDWARE=1)",
)

WATCH = 1.0  # seconds each pattern or picture stays up for the person watching


def _settings():
    if os.environ.get("APPLIANCE_CONFIG"):
        return load(os.environ["APPLIANCE_CONFIG"]).indicator
    minimal = {"source": {"host": "h", "database": "d", "user": "u"}, "tables": [{"name": "public.t"}]}
    return parse(minimal, environ={}).indicator


def _poll(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def hardware():
    environ = {k: v for k, v in os.environ.items() if k != "GPIOZERO_PIN_FACTORY"}
    with open_hardware(_settings(), environ) as hardware:
        assert not hardware.mock
        yield hardware


def test_hardware_uses_a_real_pin_factory(hardware):
    name = type(hardware.factory).__name__
    assert name in {"LGPIOFactory", "RPiGPIOFactory", "NativeFactory", "PiGPIOFactory"}


def test_hardware_each_pattern_drives_the_pins(hardware):
    board = hardware.lights
    with Lights(board) as lights:
        for name, steps in patterns().items():
            lights.show(name)
            expected = {lamps for lamps, _ in steps}
            seen: set[tuple[int, ...]] = set()

            def saw_every_step(seen=seen, expected=expected):
                seen.add(tuple(int(v) for v in board.value))
                return seen >= expected

            _poll(saw_every_step, 10.0, f"every step of {name}")
            assert seen <= expected | {(0, 0, 0), (1, 1, 0), (1, 1, 1)}  # edges between steps
            time.sleep(WATCH)  # for the person watching, not a timing check
    assert tuple(int(v) for v in board.value) == (0, 0, 0)


def test_hardware_display_shows_every_picture(hardware):
    if _settings().oled == "none":
        pytest.skip('oled = "none"')
    assert hardware.display is not None, str(hardware.display_problem)
    now = datetime.now(UTC).isoformat()
    doc = {
        "state": "ok",
        "since": now,
        "reason": "Hardware test.",
        "acknowledged": False,
        "agent": {"running": True, "last_heartbeat": now},
        "source": {},
        "tables": [
            {
                "name": "public.orders",
                "state": "ok",
                "rows": 1,
                "last_sync": now,
                "lag_seconds": 1.0,
                "frozen": False,
                "drift": [],
            }
        ],
    }
    pictures = [
        render_frame({**doc, "state": state}, "192.0.2.1:8080")
        for state in ("ok", "lagging", "drift", "maintenance", "outage")
    ]
    pictures.append(render_address_frame("192.0.2.1", "http://192.0.2.1:8080/"))
    screen = Screen(hardware.display, bright=hardware.bright)
    for i, picture in enumerate(pictures):
        assert screen.show(picture, now=float(i))
        time.sleep(WATCH)
    assert screen.frames == len(pictures)
    screen.close()


@pytest.mark.skipif(
    os.environ.get("APPLIANCE_HARDWARE_BUTTON") != "1",
    reason="needs a person at the button (set APPLIANCE_HARDWARE_BUTTON=1)",
)
def test_hardware_button_press_and_hold(hardware, capsys):
    events = ButtonEvents(hardware.button, threading.Event())
    seen: list[str] = []
    try:
        with capsys.disabled():
            print("\n>>> press the button briefly and let go")
        _poll(lambda: seen.extend(events.take()) or ACK in seen, 30.0, "a press")
        with capsys.disabled():
            print(">>> now hold the button for 3 seconds")
        _poll(lambda: seen.extend(events.take()) or HOLD in seen, 30.0, "a hold")
    finally:
        events.close()
