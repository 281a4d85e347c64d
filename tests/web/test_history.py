"""The 24-hour bars: hour cells from state changes and sync passes (rules in history.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from appliance.clock import iso
from appliance.web.history import HOURS, Passes, bars, window_start

NOW = datetime(2025, 11, 23, 14, 30, tzinfo=UTC)
START = window_start(NOW)  # 2025-11-22 15:00


def _status(orders="ok", items="ok") -> dict:
    return {"tables": [{"name": "public.orders", "state": orders}, {"name": "public.items", "state": items}]}


def _change(hour: int, old: str, new: str, reason: str, minute: int = 10) -> dict:
    at = START + timedelta(hours=hour, minutes=minute)
    return {"id": 0, "at": iso(at), "kind": "state", "table": None, "message": f"{old} -> {new}: {reason}"}


def _runs(hours, complete: bool = True) -> Passes:
    return Passes.of([START + timedelta(hours=h, minutes=m) for h in hours for m in (5, 35)], complete)


def _states(cells) -> str:
    return "".join(
        {"ok": "o", "lagging": "l", "drift": "d", "maintenance": "m", "outage": "X", "none": "."}[c.state]
        for c in cells
    )


def test_history_window_is_24_hours_ending_now():
    cells = bars(_status(), [], _runs(range(HOURS)), NOW, 30)["public.orders"]
    assert len(cells) == 24 and cells[0].start == START and cells[-1].start.hour == 14
    assert _states(cells) == "o" * 24
    assert cells[0].title == "22 Nov 15:00-16:00 UTC: ok"


def test_history_named_table_takes_the_state_others_stay_ok():
    events = [
        _change(10, "ok", "lagging", "public.items is 12m behind (more than warn_lag 10m)."),
        _change(12, "lagging", "ok", "All 2 tables are up to date."),
    ]
    out = bars(_status(), events[::-1], _runs(range(HOURS)), NOW, 30)
    assert _states(out["public.items"]) == "o" * 10 + "lll" + "o" * 11
    assert _states(out["public.orders"]) == "o" * 24


def test_history_source_outage_applies_to_every_table():
    events = [
        _change(20, "ok", "outage", "The source is unreachable: Connection refused."),
        _change(21, "outage", "ok", "All 2 tables are up to date.", minute=50),
    ]
    out = bars(_status(), events, _runs(range(HOURS)), NOW, 30)
    for name in ("public.orders", "public.items"):
        assert _states(out[name]) == "o" * 20 + "XX" + "oo"


def test_history_hours_without_a_pass_are_grey():
    out = bars(_status(), [], _runs([*range(0, 5), *range(8, 24)]), NOW, 30)
    assert _states(out["public.orders"]) == "o" * 5 + "..." + "o" * 16


def test_history_first_boot_is_all_grey():
    out = bars(_status("lagging", "lagging"), [], Passes.of([]), NOW, 30)
    assert _states(out["public.orders"]) == "." * 24


def test_history_before_the_first_pass_is_grey():
    events = [
        _change(18, "start", "lagging", "public.orders has not finished its first sync yet."),
        _change(19, "lagging", "ok", "All 2 tables are up to date."),
    ]
    out = bars(_status(), events, _runs(range(18, 24)), NOW, 30)
    assert _states(out["public.orders"]) == "." * 18 + "ll" + "oooo"  # lagging until 19:10
    assert _states(out["public.items"]) == "." * 18 + "oo" + "oooo"


def test_history_current_hour_counts_the_state_now():
    # The change names orders only, but right now items lags as well: its badge says so.
    events = [_change(23, "ok", "lagging", "public.orders is 11m behind (more than warn_lag 10m).")]
    out = bars(_status("lagging", "lagging"), events, _runs(range(HOURS)), NOW, 30)
    assert _states(out["public.orders"]) == "o" * 23 + "l"
    assert _states(out["public.items"]) == "o" * 23 + "l"


def test_history_name_must_match_whole():
    events = [_change(3, "ok", "outage", "public.orders_archive: relation does not exist")]
    status = {
        "tables": [
            {"name": "public.orders", "state": "ok"},
            {"name": "public.orders_archive", "state": "outage"},
        ]
    }
    out = bars(status, events, _runs(range(HOURS)), NOW, 30)
    assert "X" not in _states(out["public.orders"])
    assert _states(out["public.orders_archive"]).startswith("ooo" + "X")


def test_history_hours_before_the_oldest_kept_run_are_judged_by_state_changes():
    events = [_change(2, "ok", "outage", "The source is unreachable: timeout.")]
    out = bars(_status("outage", "outage"), events, _runs(range(10, 24), complete=False), NOW, 30)
    assert _states(out["public.orders"]) == "oo" + "X" * 22  # no grey before hour 10
