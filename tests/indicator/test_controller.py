"""One pass of the indicator on MockFactory pins and luma's dummy device."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from PIL import Image

from appliance.errors import StateError
from appliance.indicator.address import Address
from appliance.indicator.controller import Indicator
from appliance.indicator.display import Screen, shift_for, shifted
from appliance.indicator.frame import SIZE, render_frame

from . import statuses as s
from .statuses import AMBER, GREEN, RED, history

F, T = False, True
HERE = Address("192.168.1.23", 8080)


class Source:
    """A status document the test changes as it goes (the health module's stand-in)."""

    def __init__(self, doc):
        self.doc = doc
        self.acks = 0

    def read(self):
        if isinstance(self.doc, Exception):
            raise self.doc
        return self.doc

    def acknowledge(self):
        self.acks += 1
        self.doc = {**self.doc, "acknowledged": True}
        return True


def make(source, lights, device=None, **kw):
    screen = Screen(device) if device is not None else None
    return Indicator(
        source.read,
        source.acknowledge,
        lights,
        screen=screen,
        address=lambda: HERE,
        lamp_test=0.01,
        wall=lambda: s.NOW,
        shift_every=0,  # the burn-in shift has its own tests
        tz=UTC,
        **kw,
    )


def test_indicator_lamp_test_then_the_real_state(factory, lights, device):
    indicator = make(Source(s.status()), lights, device)
    indicator.start()
    assert device.image.getbbox() == (0, 0, *SIZE)  # every pixel on
    indicator.tick()
    assert history(factory, RED) == [F, T, F]
    assert history(factory, AMBER) == [F, T, F]
    assert history(factory, GREEN) == [F, T]
    assert indicator.screen.frames == 2
    assert device.image.tobytes() == render_frame(s.status(), HERE.short, s.NOW, UTC).tobytes()


@pytest.mark.parametrize("name", sorted(s.STATES))
def test_indicator_tick_shows_each_state(lights, device, name):
    doc = s.STATES[name]()
    tick = make(Source(doc), lights, device).tick()
    assert lights.pattern == tick.pattern
    assert tick.state == doc["state"]
    assert device.image.tobytes() == render_frame(doc, HERE.short, s.NOW, UTC).tobytes()


def test_indicator_redraws_only_on_change(lights, device):
    source = Source(s.status())
    indicator = make(source, lights, device)
    for _ in range(3):
        indicator.tick()
    assert indicator.screen.frames == 1
    source.doc = s.lagging()
    assert indicator.tick().redrawn
    indicator.tick()
    assert indicator.screen.frames == 2


class Clock:
    """The indicator's monotonic clock, moved on by the test instead of by sleeping."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_indicator_state_change_is_immediate_and_wakes_the_screen(factory, lights, device):
    source = Source(s.outage())
    clock = Clock()
    indicator = make(source, lights, device, clock=clock)
    indicator.screen.dim_after = 600.0
    indicator.tick()
    clock.now += 599.0
    indicator.tick()
    assert not indicator.screen.dimmed  # not yet quiet for dim_after
    clock.now += 1.0
    indicator.tick()
    assert indicator.screen.dimmed
    source.doc = s.status()
    tick = indicator.tick()
    assert tick.pattern == "ok"
    assert not indicator.screen.dimmed
    assert history(factory, RED)[-1] is F  # the blinking stopped in the same pass
    assert history(factory, GREEN) == [F, T]


def test_indicator_unreadable_status_shows_no_status(lights, device):
    source = Source(StateError("state store missing"))
    tick = make(source, lights, device).tick()
    assert tick.pattern == "agent_down"
    assert tick.state == "unknown"
    assert "state store missing" in tick.reason


def test_indicator_survives_a_failed_acknowledgement(factory, lights, device, button):
    source = Source(s.outage())
    source.acknowledge = lambda: 1 / 0
    indicator = Indicator(source.read, source.acknowledge, lights, button=button)
    factory.pin(s.BUTTON).drive_low()
    factory.pin(s.BUTTON).drive_high()
    tick = indicator.tick()
    assert tick.acknowledged is False
    assert tick.pattern == "outage"


def test_indicator_writes_the_preview_only_when_it_changes(lights, tmp_path):
    source = Source(s.status())
    path = tmp_path / "oled.png"
    indicator = make(source, lights, preview=path)
    indicator.tick()
    first = path.stat().st_ino
    assert (
        Image.open(path).convert("1").tobytes() == render_frame(s.status(), HERE.short, s.NOW, UTC).tobytes()
    )
    indicator.tick()
    assert path.stat().st_ino == first  # not rewritten (each write is a new file, renamed)
    source.doc = s.outage()
    indicator.tick()
    assert (
        Image.open(path).convert("1").tobytes() == render_frame(s.outage(), HERE.short, s.NOW, UTC).tobytes()
    )
    assert [p.name for p in tmp_path.iterdir()] == ["oled.png"]  # no temporary file left


def test_indicator_without_display_still_drives_the_lights(factory, lights):
    tick = make(Source(s.drift()), lights).tick()
    assert tick.pattern == "drift"
    assert not tick.redrawn
    assert history(factory, AMBER) == [F, T]


def test_indicator_close_turns_lights_off_and_clears_the_display(factory, lights, device):
    with make(Source(s.frozen()), lights, device) as indicator:
        indicator.tick()
    assert history(factory, RED) == [F, T, F]
    assert history(factory, AMBER) == [F, T, F]
    assert device.image.getbbox() is None


def test_indicator_close_with_persist_keeps_the_picture(lights, device):
    indicator = Indicator(
        Source(s.outage()).read,
        lambda: None,
        lights,
        screen=Screen(device, persist=True),
        address=lambda: HERE,
        wall=lambda: s.NOW,
        shift_every=0,  # the burn-in shift has its own tests
        tz=UTC,
    )
    with indicator:
        tick = indicator.tick()
    assert device.image.tobytes() == tick.frame.tobytes()


def test_indicator_summary_names_state_lights_and_reason(lights):
    tick = make(Source(s.outage(acknowledged=True)), lights).tick()
    assert tick.summary == ("outage: red steady; Tunnel down: bastion.example.com:22 refused the connection.")


def test_indicator_preview_shows_the_burn_in_shift_of_its_wall_time(lights, tmp_path):
    # One step of the shift every 3 minutes by the wall clock: a frame drawn "at" a time
    # (appliance indicator --once --preview FILE --at TIME) shows that time's shift.
    wall = next(
        s.NOW + timedelta(minutes=3 * k) for k in range(9) if shift_for(s.NOW + timedelta(minutes=3 * k), 180)
    )
    path = tmp_path / "oled.png"
    doc = s.status()
    indicator = Indicator(
        Source(doc).read, lambda: None, lights, address=lambda: HERE, preview=path, wall=lambda: wall, tz=UTC
    )
    tick = indicator.tick()
    plain = render_frame(doc, HERE.short, wall, UTC)
    expected = shifted(plain, shift_for(wall, 180))
    assert expected.tobytes() != plain.tobytes()
    assert tick.frame.tobytes() == expected.tobytes()
    assert Image.open(path).convert("1").tobytes() == expected.tobytes()


def test_indicator_blanks_the_screen_while_all_is_well_and_a_new_state_wakes_it(lights, device):
    source = Source(s.status())
    clock = Clock()
    indicator = make(source, lights, device, clock=clock)
    indicator.screen.blank_after = 3600.0
    indicator.tick()
    clock.now += 3599.0
    assert indicator.tick().frame.getbbox() is not None
    clock.now += 1.0
    tick = indicator.tick()
    assert indicator.screen.blank
    assert tick.frame.getbbox() is None  # what the panel shows: nothing
    source.doc = s.outage()
    tick = indicator.tick()
    assert not indicator.screen.blank
    assert device.image.tobytes() == render_frame(s.outage(), HERE.short, s.NOW, UTC).tobytes()
    assert tick.frame.tobytes() == device.image.tobytes()


def test_indicator_never_blanks_during_an_alert(lights, device):
    clock = Clock()
    indicator = make(Source(s.outage()), lights, device, clock=clock)
    indicator.screen.blank_after = 3600.0
    indicator.tick()
    clock.now += 10 * 86400.0
    indicator.tick()
    assert not indicator.screen.blank
    assert indicator.screen.dimmed  # dimmed after its quiet period, still readable
