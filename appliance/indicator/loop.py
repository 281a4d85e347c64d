"""The indicator as a service: lamp test, one pass per interval, systemd's watchdog, clean stop.

The systemd side (readiness, watchdog, the stop flag) is ``appliance.service``, shared with
the agent and the page server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ..config import Config
from ..service import StopFlag, Systemd
from .address import page_address
from .controller import Indicator, Tick
from .display import Screen
from .errors import IndicatorError
from .hardware import open_hardware
from .leds import Lights

log = logging.getLogger(__name__)


def run(indicator: Indicator, interval: float, stop: Callable[[], bool], systemd: Systemd) -> None:
    """Run the lamp test, then a pass every ``interval`` seconds until ``stop()`` is true."""
    indicator.start()
    systemd.ready()
    failed = ""
    while not stop():
        try:
            tick = indicator.tick()
        except Exception as e:  # survive a failed pass (say, the display unplugged)
            if str(e) != failed:
                log.exception("indicator pass failed: %s", e)
                failed = str(e)
        else:
            failed = ""
            systemd.alive(tick.summary)  # only after a real pass, so a stuck loop gets restarted
        indicator.wait(interval, stop)
    systemd.stopping()


def serve(
    config: Config,
    read_status: Callable[[], dict[str, Any]],
    acknowledge: Callable[[], object],
    *,
    once: bool = False,
    preview: str | os.PathLike | None = None,
    interval: float = 1.0,
    persist: bool = False,
    stop: Callable[[], bool] | None = None,
    lamp_test: float = 1.0,
    warn: Callable[[str], None] = log.warning,
    at: datetime | None = None,
) -> Tick | None:
    """Open the hardware of ``[indicator]`` and run: one pass with ``once``, else until stopped.

    With ``once`` and ``preview`` the frame is written even when no hardware is found.
    ``at`` is the wall-clock time to show (its times and its burn-in shift); default now.
    """
    address = partial(page_address, config.web)
    settings = config.indicator
    wall: Callable[[], datetime] = (lambda: at) if at is not None else (lambda: datetime.now(UTC))
    try:
        hardware = open_hardware(config.indicator, config.environ)
    except IndicatorError as e:
        if not (once and preview):
            raise
        warn(f"{e}\nThe lights and the display were not updated; the preview was written.")
        with Indicator(
            read_status,
            acknowledge,
            None,
            address=address,
            preview=preview,
            shift_every=settings.shift_every,
            wall=wall,
        ) as ind:
            return ind.tick()
    with hardware:
        if hardware.display_problem is not None:
            warn(f"{hardware.display_problem}\nRunning with the lights only.")
        screen = None
        if hardware.display is not None:
            # --once keeps its picture: it would be gone the moment the command exits.
            screen = Screen(
                hardware.display,
                bright=hardware.bright,
                dim_after=settings.dim_after,
                blank_after=settings.blank_after,
                persist=persist or once,
            )
        indicator = Indicator(
            read_status,
            acknowledge,
            Lights(hardware.lights),
            screen=screen,
            button=hardware.button,
            address=address,
            preview=preview,
            lamp_test=lamp_test,
            shift_every=settings.shift_every,
            wall=wall,
        )
        with indicator:
            if once:
                return indicator.tick()
            with Systemd(config.environ) as systemd, StopFlag() as flag:
                run(indicator, interval, stop or flag, systemd)
    return None
