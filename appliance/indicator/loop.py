"""The indicator as a service: lamp test, one pass per interval, systemd's watchdog, clean stop."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from ..config import Config
from .address import page_address
from .controller import Indicator, Tick
from .display import Screen
from .errors import IndicatorError
from .hardware import open_hardware
from .leds import Lights

log = logging.getLogger(__name__)


class Systemd:
    """Tell systemd we are ready and alive; a no-op outside systemd (no NOTIFY_SOCKET)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._notifier: Any = None
        # sdnotify reads NOTIFY_SOCKET from the process itself; ``environ`` is that same
        # environment (Config.environ), consulted so nothing is opened outside systemd.
        if environ.get("NOTIFY_SOCKET"):
            import sdnotify

            self._notifier = sdnotify.SystemdNotifier()
        self._status: str | None = None

    def _send(self, *lines: str) -> None:
        if self._notifier is not None:
            self._notifier.notify("\n".join(lines))

    def ready(self) -> None:
        """Say start-up is done (Type=notify)."""
        self._send("READY=1")

    def alive(self, status: str) -> None:
        """Pet the watchdog after a real pass; pass the status line on when it changed."""
        lines = ["WATCHDOG=1"]
        if status != self._status:
            lines.append(f"STATUS={status}")
            self._status = status
        self._send(*lines)

    def stopping(self) -> None:
        """Say we are stopping on purpose."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the notification socket."""
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
        self._notifier = None

    def __enter__(self) -> Systemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StopFlag:
    """Set by SIGTERM or SIGINT. The handler only sets a flag; the loop polls it."""

    def __init__(self) -> None:
        self._set = False

    def set(self, *_: object) -> None:
        """Ask the loop to stop (usable as a signal handler)."""
        self._set = True

    def __call__(self) -> bool:
        return self._set

    def install(self) -> StopFlag:
        """Make SIGTERM and SIGINT set this flag; return it."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.set)
        return self


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
) -> Tick | None:
    """Open the hardware of ``[indicator]`` and run: one pass with ``once``, else until stopped.

    With ``once`` and ``preview`` the frame is written even when no hardware is found.
    """
    address = partial(page_address, config.web)
    try:
        hardware = open_hardware(config.indicator, config.environ)
    except IndicatorError as e:
        if not (once and preview):
            raise
        warn(f"{e}\nThe lights and the display were not updated; the preview was written.")
        with Indicator(read_status, acknowledge, None, address=address, preview=preview) as ind:
            return ind.tick()
    with hardware:
        if hardware.display_problem is not None:
            warn(f"{hardware.display_problem}\nRunning with the lights only.")
        screen = None
        if hardware.display is not None:
            # --once keeps its picture: it would be gone the moment the command exits.
            screen = Screen(hardware.display, bright=hardware.bright, persist=persist or once)
        indicator = Indicator(
            read_status,
            acknowledge,
            Lights(hardware.lights),
            screen=screen,
            button=hardware.button,
            address=address,
            preview=preview,
            lamp_test=lamp_test,
        )
        with indicator:
            if once:
                return indicator.tick()
            with Systemd(config.environ) as systemd:
                run(indicator, interval, stop or StopFlag().install(), systemd)
    return None
