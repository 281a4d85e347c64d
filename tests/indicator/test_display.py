"""The OLED's Screen on luma's dummy device: redraw only on change, burn-in protection."""

from __future__ import annotations

from datetime import UTC

import pytest
from PIL import Image

from appliance.indicator.display import SHIFTS, Screen
from appliance.indicator.frame import SIZE, render_frame

from . import statuses as s


def _frame(make=s.status):
    return render_frame(make(), s.ADDRESS, s.NOW, UTC)


def test_screen_redraws_only_when_the_picture_changes(device):
    screen = Screen(device, shift_every=0)
    ok, outage = _frame(), _frame(s.outage)
    assert screen.show(ok, now=0.0) is True
    assert screen.show(ok, now=1.0) is False
    assert screen.show(ok.copy(), now=2.0) is False  # equal content, another object
    assert screen.frames == 1
    assert screen.show(outage, now=3.0) is True
    assert screen.show(ok, now=4.0) is True
    assert screen.frames == 3
    assert device.image.tobytes() == ok.tobytes()


def test_screen_shifts_the_picture_a_pixel_at_a_time(device):
    screen = Screen(device, shift_every=60.0, dim_after=1e9)
    frame = _frame()
    screen.show(frame, now=100.0)
    assert device.image.tobytes() == frame.tobytes()
    for step in range(1, len(SHIFTS) + 1):
        now = 100.0 + 60.0 * step
        dx, dy = SHIFTS[step % len(SHIFTS)]
        assert screen.shift(now) == (dx, dy)
        screen.show(frame, now=now)
        expected = Image.new("1", SIZE)
        expected.paste(frame, (dx, dy))  # the 1-pixel margin is empty: nothing is lost
        assert device.image.tobytes() == expected.tobytes()
        assert device.image.histogram() == frame.histogram()
    assert screen.frames == len(SHIFTS) + 1
    assert all(abs(dx) <= 1 and abs(dy) <= 1 for dx, dy in SHIFTS)


def test_screen_does_not_shift_within_the_interval(device):
    screen = Screen(device, shift_every=60.0)
    frame = _frame()
    for now in (0.0, 10.0, 59.9):
        screen.show(frame, now=now)
    assert screen.frames == 1


def test_screen_dims_after_a_quiet_period_and_wakes(device):
    screen = Screen(device, dim_after=300.0, shift_every=0)
    frame = _frame()
    screen.show(frame, now=0.0)
    screen.show(frame, now=299.0)
    assert not screen.dimmed
    screen.show(frame, now=300.0)
    assert screen.dimmed
    screen.wake(now=310.0)
    assert not screen.dimmed
    screen.show(frame, now=600.0)
    assert not screen.dimmed  # the quiet period restarted at the wake
    screen.show(frame, now=610.0)
    assert screen.dimmed
    assert screen.frames == 1  # dimming is a contrast command, not a redraw


def test_screen_close_clears_the_display(device):
    screen = Screen(device)
    screen.show(_frame(), now=0.0)
    screen.close()
    assert device.image.getbbox() is None


def test_screen_close_with_persist_keeps_the_picture(device):
    frame = _frame(s.outage)
    with Screen(device, persist=True) as screen:
        screen.show(frame, now=0.0)
    assert device.image.tobytes() == frame.tobytes()


def test_screen_refuses_a_frame_of_the_wrong_size(device):
    with pytest.raises(ValueError, match="128x64"):
        Screen(device).show(Image.new("1", (64, 32)), now=0.0)
