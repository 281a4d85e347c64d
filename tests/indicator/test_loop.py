"""The service loop on simulated hardware: the watchdog petted per pass, stopping, `serve`.

The systemd helper itself (``appliance.service``) is tested in tests/test_service.py.
"""

from __future__ import annotations

import os
import socket
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from appliance.indicator.controller import Indicator
from appliance.indicator.errors import NoGPIOError
from appliance.indicator.frame import SIZE
from appliance.indicator.loop import run, serve
from appliance.service import StopFlag, Systemd

from . import statuses as s
from .statuses import wait_until

ON_A_PI = Path("/dev/gpiomem").exists() or os.environ.get("APPLIANCE_HARDWARE") == "1"


@contextmanager
def looping(target, *args, **kwargs):
    """Run ``target`` in a thread with a StopFlag as ``stop``; always stop and join it."""
    stop = StopFlag()
    thread = threading.Thread(target=target, args=args, kwargs={**kwargs, "stop": stop})
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join()


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
    """A real datagram socket where systemd would listen; yields (environ, received).

    sdnotify reads NOTIFY_SOCKET from the process environment itself, so it is set there.
    """
    path = str(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(path)
    server.settimeout(0.05)
    received: list[str] = []
    stop = threading.Event()

    def listen():
        while not stop.is_set():
            try:
                received.append(server.recv(4096).decode())
            except TimeoutError:
                continue

    listener = threading.Thread(target=listen)
    listener.start()
    yield {"NOTIFY_SOCKET": path}, received
    stop.set()
    listener.join()
    server.close()


def test_run_pets_the_watchdog_after_each_pass_and_stops(notify_socket, lights):
    environ, received = notify_socket
    doc = s.status()
    indicator = Indicator(lambda: doc, lambda: None, lights, lamp_test=0.01)
    with Systemd(environ) as systemd, looping(run, indicator, 0.01, systemd=systemd):
        wait_until(lambda: received.count("WATCHDOG=1") >= 3, what="3 watchdog pings")
    wait_until(lambda: received and received[-1] == "STOPPING=1", what="STOPPING=1")
    assert received[0] == "READY=1"
    assert received[1] == "WATCHDOG=1\nSTATUS=ok: green steady; All 3 tables are fresh."
    assert set(received[2:-1]) == {"WATCHDOG=1"}
    assert lights.pattern == "ok"


def test_run_survives_a_failed_pass(notify_socket, lights, device):
    environ, received = notify_socket
    doc = s.status()
    indicator = Indicator(lambda: doc, lambda: None, lights, lamp_test=0.01)
    real_tick, calls = indicator.tick, []

    def flaky_tick():
        calls.append(1)
        if len(calls) == 2:
            raise OSError("I2C write failed")
        return real_tick()

    indicator.tick = flaky_tick
    with Systemd(environ) as systemd, looping(run, indicator, 0.01, systemd=systemd):
        wait_until(lambda: len(calls) >= 4, what="passes after the failure")
    # No watchdog ping for the failed pass: systemd restarts a loop that keeps failing.
    wait_until(lambda: received and received[-1] == "STOPPING=1", what="STOPPING=1")
    pings = [m for m in received if m.startswith("WATCHDOG=1")]
    assert len(pings) == len(calls) - 1


def test_serve_once_on_mock_hardware_writes_the_preview(tmp_path):
    config = s.config(environ={"GPIOZERO_PIN_FACTORY": "mock"})
    path = tmp_path / "oled.png"
    tick = serve(config, s.outage, lambda: None, once=True, preview=path)
    assert tick.pattern == "outage"
    image = Image.open(path)
    assert (image.mode, image.size) == ("1", SIZE)
    assert image.tobytes() == tick.frame.tobytes()


def test_serve_once_with_oled_none_still_writes_the_preview(tmp_path):
    config = s.config(mock=True, oled="none")
    path = tmp_path / "oled.png"
    tick = serve(config, s.status, lambda: None, once=True, preview=path)
    assert Image.open(path).tobytes() == tick.frame.tobytes()


@pytest.mark.skipif(ON_A_PI, reason="this machine has GPIO")
def test_serve_once_preview_without_hardware_warns_and_writes(tmp_path):
    warnings: list[str] = []
    path = tmp_path / "oled.png"
    tick = serve(s.config(), s.drift, lambda: None, once=True, preview=path, warn=warnings.append)
    assert tick.pattern == "drift"
    assert Image.open(path).tobytes() == tick.frame.tobytes()
    assert len(warnings) == 1 and "No GPIO pins were found" in warnings[0]


@pytest.mark.skipif(ON_A_PI, reason="this machine has GPIO")
def test_serve_without_hardware_says_what_to_check():
    with pytest.raises(NoGPIOError) as caught:
        serve(s.config(), s.status, lambda: None, once=True)
    message = str(caught.value)
    for hint in (
        "GPIOZERO_PIN_FACTORY=mock",
        "mock = true",
        "groups gpio and i2c",
        "lgpio",
        "writable",
        "Pi 5",
    ):
        assert hint in message


def test_serve_runs_until_stopped_and_turns_everything_off(tmp_path):
    config = s.config(mock=True)
    path = tmp_path / "oled.png"
    result: list[object] = []

    def serving(stop):
        result.append(
            serve(config, s.maintenance, lambda: None, preview=path, interval=0.01, stop=stop, lamp_test=0.01)
        )

    with looping(serving):
        wait_until(path.exists, what="the first frame")
    assert result == [None]
