"""The traffic light's patterns, checked on gpiozero's MockFactory pins.

gpiozero's own ``MockPin.assert_states`` zips the history with the expectation and so
passes a history that is too short; these tests compare whole lists, lengths included.
"""

from __future__ import annotations

import threading
from itertools import accumulate

import pytest

from appliance.indicator.leds import BlinkTimes, Lights

from .conftest import TIMES
from .statuses import AMBER, GREEN, RED, history, wait_until

F, T = False, True


@pytest.mark.parametrize(
    ("pattern", "red", "amber", "green"),
    [
        ("ok", [F], [F], [F, T]),
        ("drift", [F], [F, T], [F]),
        ("frozen", [F, T], [F, T], [F]),
        ("outage_ack", [F, T], [F], [F]),
        ("lamp_test", [F, T], [F, T], [F, T]),
        ("off", [F], [F], [F]),
    ],
)
def test_lights_steady_pattern_sets_exactly_its_lamps(factory, lights, pattern, red, amber, green):
    lights.show(pattern)
    assert lights.pattern == pattern
    assert history(factory, RED) == red
    assert history(factory, AMBER) == amber
    assert history(factory, GREEN) == green


def _alternating(n: int, first: bool = False) -> list[bool]:
    return [(i % 2 == 1) != first for i in range(n)]


@pytest.mark.parametrize(
    ("pattern", "lamp", "seconds"),
    [
        ("lagging", AMBER, TIMES.fast),
        ("maintenance", GREEN, TIMES.slow),
        ("outage", RED, TIMES.fast),
    ],
)
def test_lights_blink_pattern_blinks_one_lamp(factory, lights, pattern, lamp, seconds):
    lights.show(pattern)
    wait_until(lambda: len(factory.pin(lamp).states) >= 7, what=f"{pattern} to blink 3 times")
    lights.show("off")  # joins the blinking thread: the history is final from here

    states = factory.pin(lamp).states
    assert len(states) >= 7 and len(states) % 2 == 1  # ends off, whether by itself or by "off"
    assert [s.state for s in states] == _alternating(len(states))  # off, on, off, on, ..., off
    # Each full on or off phase lasted its time (a lower bound: a busy machine only adds).
    assert all(s.timestamp >= seconds * 0.8 for s in states[2:-1])
    for other in {RED, AMBER, GREEN} - {lamp}:
        assert history(factory, other) == [F]


def test_lights_maintenance_blinks_slower_than_lagging():
    assert TIMES.slow > 2 * TIMES.fast
    assert BlinkTimes().slow > 2 * BlinkTimes().fast


def test_lights_agent_down_alternates_red_and_amber(factory, lights):
    for pin in (RED, AMBER, GREEN):
        factory.pin(pin).clear_states()  # one common start, so the timelines line up
    lights.show("agent_down")
    wait_until(lambda: len(factory.pin(AMBER).states) >= 7, what="3 alternations")
    lights.show("off")

    red, amber = factory.pin(RED).states, factory.pin(AMBER).states
    assert [s.state for s in red] == _alternating(len(red))
    assert [s.state for s in amber] == _alternating(len(amber))
    # Red leads (red on, amber on, red on, ...), and "off" may end a red phase early.
    assert len(red) - 2 <= len(amber) <= len(red)
    assert len(amber) >= 7
    assert history(factory, GREEN) == [F]
    # Absolute times of each change: amber comes on as red goes off, and the other way.
    red_t = list(accumulate(s.timestamp for s in red))
    amber_t = list(accumulate(s.timestamp for s in amber))
    for k in range(1, len(amber) - 1):
        assert abs(amber_t[k] - red_t[k + 1]) < TIMES.fast / 2
    for k in range(1, min(len(red), len(amber)) - 1):
        assert red_t[k] < amber_t[k]


def test_lights_switching_is_immediate(factory, board):
    # An hour-long blink phase: were show() to wait for it, pytest's timeout would fail the test.
    slow = Lights(board, BlinkTimes(fast=3600.0, slow=3600.0))
    slow.show("lagging")
    assert history(factory, AMBER) == [F, T]
    slow.show("ok")
    assert history(factory, AMBER) == [F, T, F]
    assert history(factory, GREEN) == [F, T]
    assert not [t for t in threading.enumerate() if t.name.startswith("lights-")]
    slow.close()


def test_lights_same_pattern_again_keeps_its_rhythm(factory, lights):
    lights.show("outage")
    blinkers = [t for t in threading.enumerate() if t.name == "lights-outage"]
    for _ in range(5):
        lights.show("outage")
    assert [t for t in threading.enumerate() if t.name == "lights-outage"] == blinkers
    assert len(blinkers) == 1


def test_lights_close_turns_every_lamp_off(factory, lights):
    lights.show("frozen")
    lights.close()
    assert history(factory, RED) == [F, T, F]
    assert history(factory, AMBER) == [F, T, F]
    assert history(factory, GREEN) == [F]
    assert lights.pattern == "off"


def test_lights_unknown_pattern_is_refused(lights):
    with pytest.raises(KeyError):
        lights.show("disco")
