"""Finding pins and display: simulated when asked, a clear message when missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory
from luma.core.device import dummy

from appliance.indicator.errors import IndicatorError, NoDisplayError, NoGPIOError
from appliance.indicator.hardware import open_display, open_hardware, pin_factory, wants_mock

from . import statuses as s

ON_A_PI = Path("/dev/gpiomem").exists() or os.environ.get("APPLIANCE_HARDWARE") == "1"


@pytest.mark.parametrize(
    ("mock", "environ", "expected"),
    [
        (True, {}, True),
        (False, {"GPIOZERO_PIN_FACTORY": "mock"}, True),
        (False, {"GPIOZERO_PIN_FACTORY": " Mock "}, True),
        (False, {"GPIOZERO_PIN_FACTORY": "lgpio"}, False),
        (False, {}, False),
    ],
)
def test_wants_mock_from_config_or_environment(mock, environ, expected):
    assert wants_mock(s.config(mock=mock).indicator, environ) is expected


def test_pin_factory_mock_when_asked():
    factory = pin_factory(s.config(mock=True).indicator, {})
    assert isinstance(factory, MockFactory)
    factory.close()


@pytest.mark.skipif(ON_A_PI, reason="this machine has GPIO")
def test_pin_factory_without_gpio_says_what_to_check():
    with pytest.raises(NoGPIOError) as caught:
        pin_factory(s.config().indicator, {})
    error = caught.value
    assert isinstance(error, IndicatorError) and isinstance(error, OSError)
    assert [r.split(":")[0] for r in error.reasons] == ["lgpio", "rpigpio", "native"]
    assert "Traceback" not in str(error)


def test_pin_factory_unknown_name_lists_the_known_ones():
    with pytest.raises(NoGPIOError, match=r"gpiod: no such pin factory \(known: .*lgpio"):
        pin_factory(s.config().indicator, {"GPIOZERO_PIN_FACTORY": "gpiod"})


def test_open_display_none_is_no_device():
    assert open_display(s.config(oled="none").indicator, mock=True) is None


def test_open_display_mock_is_luma_dummy_in_mode_1():
    device = open_display(s.config().indicator, mock=True)
    assert isinstance(device, dummy)
    assert (device.mode, device.size) == ("1", (128, 64))


def test_open_display_missing_bus_says_what_to_check():
    settings = s.config(oled="sh1106", i2c_port=97, i2c_address=0x3D).indicator
    with pytest.raises(NoDisplayError) as caught:
        open_display(settings, mock=False)
    message = str(caught.value)
    assert "sh1106" in message and "bus 97" in message and "0x3D" in message
    for hint in ("raspi-config", "/dev/i2c-97", "group i2c", "i2cdetect -y 97", 'oled = "none"'):
        assert hint in message


def test_open_hardware_mock_opens_everything_and_closes_cleanly():
    settings = s.config(mock=True).indicator
    with open_hardware(settings, {}, hold_time=0.5) as hardware:
        assert hardware.mock and hardware.display_problem is None
        assert hardware.lights.red.pin.info.name == "GPIO17"
        assert hardware.button.hold_time == 0.5
        assert isinstance(hardware.display, dummy)
    assert hardware.lights.closed and hardware.button.closed


def test_open_hardware_same_pin_twice_is_a_clear_error():
    settings = s.config(mock=True, red=17, amber=17).indicator
    with pytest.raises(IndicatorError, match=r"Cannot use the GPIO pins .*red=17 amber=17"):
        open_hardware(settings, {})


@pytest.mark.skipif(ON_A_PI, reason="this machine may have a display")
def test_open_hardware_missing_display_is_a_problem_not_an_error():
    settings = s.config(oled="ssd1306", i2c_port=97).indicator
    with open_hardware(settings, {}, factory=MockFactory()) as hardware:
        assert hardware.display is None
        assert isinstance(hardware.display_problem, NoDisplayError)
