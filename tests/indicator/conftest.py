"""Fixtures of the indicator tests: gpiozero's MockFactory and luma's dummy device only."""

from __future__ import annotations

import pytest
from gpiozero import Button, TrafficLights
from gpiozero.pins.mock import MockFactory
from luma.core.device import dummy

from appliance.indicator.leds import BlinkTimes, Lights

from .statuses import AMBER, BUTTON, GREEN, RED

# Short blink times keep the suite fast; "slow" is three times "fast" as in production.
TIMES = BlinkTimes(fast=0.02, slow=0.06)


@pytest.fixture
def factory():
    factory = MockFactory()
    yield factory
    factory.close()


@pytest.fixture
def board(factory):
    board = TrafficLights(RED, AMBER, GREEN, pin_factory=factory)
    yield board
    board.close()


@pytest.fixture
def lights(board):
    lights = Lights(board, TIMES)
    yield lights
    lights.close()


@pytest.fixture
def button(factory):
    button = Button(BUTTON, pull_up=True, hold_time=0.05, pin_factory=factory)
    yield button
    button.close()


@pytest.fixture
def device():
    return dummy(width=128, height=64, mode="1")
