"""The button on a MockFactory pin: press acknowledges, hold shows the address."""

from __future__ import annotations

import threading
from datetime import UTC

from appliance.indicator.address import Address
from appliance.indicator.button import ACK, HOLD, PRESS, ButtonEvents
from appliance.indicator.controller import Indicator
from appliance.indicator.display import Screen
from appliance.indicator.frame import render_address_frame, render_frame

from . import statuses as s
from .statuses import BUTTON, RED, history, wait_until

F, T = False, True
HERE = Address("192.168.1.23", 8080)


class Source:
    """An outage that the button can acknowledge (the health module's stand-in)."""

    def __init__(self):
        self.doc = s.outage()
        self.acks = 0

    def read(self):
        return self.doc

    def acknowledge(self):
        self.acks += 1
        self.doc = s.outage(acknowledged=True)
        return True


def press(factory):
    factory.pin(BUTTON).drive_low()  # pull-up: pressed pulls the pin low
    factory.pin(BUTTON).drive_high()


def hold(factory, button):
    factory.pin(BUTTON).drive_low()
    wait_until(lambda: button.is_held, what="the button to be held")
    factory.pin(BUTTON).drive_high()


def make(source, lights, button, device, address_time=30.0):
    return Indicator(
        source.read,
        source.acknowledge,
        lights,
        button=button,
        screen=Screen(device),
        address=lambda: HERE,
        address_time=address_time,
        wall=lambda: s.NOW,
        shift_every=0,  # the burn-in shift has its own tests
        tz=UTC,
    )


def test_button_events_press_then_release_is_an_ack(factory, button):
    wakeup = threading.Event()
    events = ButtonEvents(button, wakeup)
    press(factory)
    assert wakeup.is_set()
    assert events.take() == [PRESS, ACK]
    assert events.take() == []


def test_button_events_hold_is_not_an_ack(factory, button):
    events = ButtonEvents(button, threading.Event())
    hold(factory, button)
    assert events.take() == [PRESS, HOLD]


def test_button_press_acknowledges_the_outage(factory, lights, button, device):
    source = Source()
    indicator = make(source, lights, button, device)
    assert indicator.tick().pattern == "outage"
    wait_until(lambda: len(factory.pin(RED).states) >= 3, what="red to blink")
    press(factory)
    tick = indicator.tick()
    assert source.acks == 1
    assert tick.acknowledged is True
    assert tick.pattern == "outage_ack"  # red blinking became red steady in the same pass
    red = history(factory, RED)
    assert red[-1] is T
    assert red == [(i % 2 == 1) for i in range(len(red))]
    assert len(red) % 2 == 0 and len(red) >= 4


def test_button_hold_shows_the_address_and_does_not_acknowledge(factory, lights, button, device):
    source = Source()
    indicator = make(source, lights, button, device)
    indicator.tick()
    hold(factory, button)
    indicator.tick()
    assert source.acks == 0
    expected = render_address_frame("192.168.1.23", "http://192.168.1.23:8080/")
    assert device.image.tobytes() == expected.tobytes()
    assert lights.pattern == "outage"  # the lights keep telling the state


def test_button_address_screen_goes_back_to_the_state(factory, lights, button, device):
    source = Source()
    indicator = make(source, lights, button, device, address_time=0.2)
    hold(factory, button)
    indicator.tick()
    assert device.image.tobytes() == render_address_frame(HERE.ip, HERE.url).tobytes()
    status_frame = render_frame(source.doc, HERE.short, s.NOW, UTC).tobytes()

    def back():
        indicator.tick()
        return device.image.tobytes() == status_frame

    wait_until(back, what="the status frame to return")


def test_button_press_wakes_a_dimmed_screen(factory, lights, button, device):
    source = Source()
    indicator = make(source, lights, button, device)
    indicator.screen.dimmed = True  # as after a quiet period
    factory.pin(BUTTON).drive_low()
    indicator.tick()
    assert not indicator.screen.dimmed
    factory.pin(BUTTON).drive_high()


def test_button_press_switches_a_blank_screen_back_on(factory, lights, button, device):
    source = Source()
    source.doc = s.status()  # all is well: the only state in which the panel goes off
    clock = iter(range(0, 10_000, 3600)).__next__  # each pass an hour after the last
    indicator = Indicator(
        source.read,
        lambda: False,  # nothing to acknowledge while all is well
        lights,
        button=button,
        screen=Screen(device, blank_after=3600.0),
        address=lambda: HERE,
        wall=lambda: s.NOW,
        shift_every=0,
        tz=UTC,
        clock=lambda: float(clock()),
    )
    indicator.tick()
    assert indicator.tick().frame.getbbox() is None  # an hour later: off, the picture black
    assert indicator.screen.blank
    press(factory)
    tick = indicator.tick()
    assert not indicator.screen.blank
    assert tick.frame.tobytes() == render_frame(s.status(), HERE.short, s.NOW, UTC).tobytes()
    assert device.image.tobytes() == tick.frame.tobytes()


def test_button_wakes_the_waiting_loop_at_once(factory, lights, button, device):
    indicator = make(Source(), lights, button, device)
    done = threading.Event()
    waiter = threading.Thread(target=lambda: (indicator.wait(60.0), done.set()))
    waiter.start()
    press(factory)
    wait_until(done.is_set, what="the wait to end on the press")
    waiter.join()


def test_button_events_close_detaches(factory, button):
    events = ButtonEvents(button, threading.Event())
    events.close()
    press(factory)
    assert events.take() == []
