"""Errors of the indicator; each says what happened, why, and what to check."""

from __future__ import annotations

from ..errors import ApplianceError

GPIO_HINTS = (
    "  - off a Raspberry Pi: run with GPIOZERO_PIN_FACTORY=mock or set [indicator] mock = true\n"
    "    to simulate the LEDs, the button and the display;\n"
    "  - on a Raspberry Pi: the service user is in the groups gpio and i2c\n"
    "    (sudo usermod -aG gpio,i2c USER, then log in again);\n"
    "  - on a Raspberry Pi 5: only the lgpio pin factory works; install it (pip install lgpio,\n"
    "    or python3-lgpio with a venv made with --system-site-packages) and run from a writable\n"
    "    working directory (lgpio creates its .lgd-nfy pipes there; the unit sets\n"
    "    WorkingDirectory=/var/lib/appliance)."
)


class IndicatorError(ApplianceError):
    """The indicator could not run."""


class NoGPIOError(IndicatorError, OSError):
    """No GPIO pins were found for the traffic light and the button."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = list(reasons)
        tried = "".join(f"\n  - {r}" for r in self.reasons)
        super().__init__(
            "No GPIO pins were found for the traffic light and the button, so the indicator "
            f"cannot run. Pin factories tried:{tried}\nCheck:\n{GPIO_HINTS}"
        )


class NoDisplayError(IndicatorError, OSError):
    """No OLED display answered on the I2C bus."""

    def __init__(self, driver: str, port: int, address: int, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"No {driver} OLED display answered on I2C bus {port} at address 0x{address:02X} "
            f"({reason}). Check:\n"
            "  - I2C is enabled (sudo raspi-config nonint do_i2c 0, then reboot) and "
            f"/dev/i2c-{port} exists;\n"
            "  - the service user is in the group i2c;\n"
            "  - the display is wired to SDA (pin 3), SCL (pin 5), 3.3 V and GND, and\n"
            f"    `i2cdetect -y {port}` shows {address:02x};\n"
            '  - set [indicator] oled = "none" when no display is attached, or use\n'
            "    GPIOZERO_PIN_FACTORY=mock / [indicator] mock = true off a Pi."
        )
