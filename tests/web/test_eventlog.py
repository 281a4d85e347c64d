"""The event log for people: what changed, and how long the state before it lasted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from appliance.clock import iso
from appliance.health.store import StateStore
from appliance.web.eventlog import readable, recovered

from .states import fill

NOW = datetime(2026, 12, 4, 21, 0, tzinfo=UTC)


def _state(at: datetime, message: str) -> dict:
    return {"kind": "state", "at": iso(at), "message": message, "table": None}


def test_eventlog_titles_and_durations():
    events = [  # newest first, as the store returns them
        _state(NOW, "outage -> ok: All 2 tables are up to date."),
        {"kind": "ack", "at": iso(NOW - timedelta(seconds=20)), "message": "outage acknowledged by web"},
        _state(NOW - timedelta(seconds=25), "ok -> outage: Tunnel down: refused"),
        _state(NOW - timedelta(hours=2), "start -> ok: All 2 tables are up to date."),
    ]
    out = readable(events)
    assert out[0]["title"] == "Back to ok after outage; the outage lasted 25s"
    assert out[1] == events[1]  # not a state change: as it was
    assert (
        out[2]["title"] == "Outage (was ok); the ok lasted 1h 59m"
        and out[2]["detail"] == "Tunnel down: refused"
    )
    assert out[3]["title"] == "Started: ok" and out[3]["lasted"] is None


def test_eventlog_recovered_line_for_an_hour():
    events = [
        _state(NOW - timedelta(minutes=12), "outage -> ok: fine"),
        _state(NOW - timedelta(minutes=12, seconds=25), "ok -> outage: Tunnel down"),
    ]
    assert recovered(events, "ok", NOW) == "Recovered from an outage 12m ago (it lasted 25s)."
    assert recovered(events, "ok", NOW + timedelta(hours=1)) == ""
    assert recovered(events, "lagging", NOW) == ""


def test_eventlog_on_the_pages(config, client):
    fill(config, "outage")
    fill(config, "ok")
    page = client.get("/").text
    assert "Recovered from an outage" in page and "Back to ok after outage" in page
    assert "Back to ok after outage" in client.get("/events").text
    with StateStore(config.state_dir, readonly=True) as store:
        assert any(e["message"].startswith("outage -> ok") for e in store.events(10))
