"""The OLED's Screen on luma's dummy device: redraw only on change, burn-in protection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from appliance.indicator.display import SHIFTS, Screen, shift_for, shifted
from appliance.indicator.frame import SIZE, render_frame

from . import statuses as s


def _frame(make=s.status):
    return render_frame(make(), s.ADDRESS, s.NOW, UTC)


def test_screen_redraws_only_when_the_picture_changes(device):
    screen = Screen(device)
    ok, outage = _frame(), _frame(s.outage)
    assert screen.show(ok, now=0.0) is True
    assert screen.show(ok, now=1.0) is False
    assert screen.show(ok.copy(), now=2.0) is False  # equal content, another object
    assert screen.frames == 1
    assert screen.show(outage, now=3.0) is True
    assert screen.show(ok, now=4.0) is True
    assert screen.frames == 3
    assert device.image.tobytes() == ok.tobytes()


def test_shift_for_walks_a_pixel_per_interval_by_the_wall_clock():
    start = datetime(2025, 11, 23, 14, 0, tzinfo=UTC)
    start -= timedelta(seconds=start.timestamp() % (60 * len(SHIFTS)))  # a cycle begins
    seen = [shift_for(start + timedelta(seconds=60 * step + 30), 60.0) for step in range(len(SHIFTS) + 1)]
    assert seen[: len(SHIFTS)] == list(SHIFTS)
    assert seen[-1] == SHIFTS[0]  # round again
    assert shift_for(start + timedelta(seconds=59), 60.0) == SHIFTS[0]  # not within the interval
    assert shift_for(start + timedelta(seconds=60), 0) == (0, 0)  # 0: never
    assert all(abs(dx) <= 1 and abs(dy) <= 1 for dx, dy in SHIFTS)


@pytest.mark.parametrize("offset", SHIFTS)
def test_shifted_moves_the_content_and_loses_nothing(offset):
    frame = _frame()
    moved = shifted(frame, offset)
    expected = Image.new("1", SIZE)
    expected.paste(frame, offset)  # the 1-pixel margin is empty: nothing is lost
    assert moved.tobytes() == expected.tobytes()
    assert moved.histogram() == frame.histogram()


def test_screen_dims_after_a_quiet_period_and_wakes(device):
    screen = Screen(device, dim_after=300.0)
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


def test_screen_blanks_only_while_resting_and_wakes_with_the_latest_picture(device):
    screen = Screen(device, dim_after=60.0, blank_after=600.0)
    ok, outage = _frame(), _frame(s.outage)
    screen.show(ok, now=0.0, resting=True)
    screen.show(ok, now=599.0, resting=True)
    assert screen.dimmed and not screen.blank
    screen.show(ok, now=600.0, resting=True)
    assert screen.blank
    assert screen.show(ok.copy(), now=700.0, resting=True) is False  # nothing sent while off
    screen.wake(now=800.0)  # a button press
    assert not screen.blank and not screen.dimmed
    assert device.image.tobytes() == ok.tobytes()
    screen.show(ok, now=1400.0, resting=True)
    assert screen.blank
    # An alert is never hidden: a state that is not resting switches the panel on.
    assert screen.show(outage, now=1401.0, resting=False) is True
    assert not screen.blank
    assert device.image.tobytes() == outage.tobytes()
    screen.show(outage, now=9999.0, resting=False)
    assert not screen.blank


def test_screen_zero_means_never(device):
    screen = Screen(device, dim_after=0, blank_after=0)
    screen.show(_frame(), now=0.0, resting=True)
    screen.show(_frame(), now=1e9, resting=True)
    assert not screen.dimmed and not screen.blank


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
