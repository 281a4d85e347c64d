"""Reading the status document into a light pattern and the table that matters most."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from appliance.indicator.view import parse_time, pattern_for, unreadable, word_for, worst_table

from . import statuses as s


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("ok", "ok"),
        ("lagging", "lagging"),
        ("drift", "drift"),
        ("frozen", "frozen"),
        ("maintenance", "maintenance"),
        ("outage", "outage"),
        ("outage_ack", "outage_ack"),
        ("agent_down", "agent_down"),
    ],
)
def test_pattern_for_each_state(name, pattern):
    assert pattern_for(s.STATES[name]()) == pattern


def test_pattern_for_agent_not_running_wins_over_outage():
    doc = s.outage()
    doc["agent"] = {"running": False, "last_heartbeat": None}
    assert pattern_for(doc) == "agent_down"


def test_pattern_for_acknowledged_drift_stays_drift():
    doc = s.drift()
    doc["acknowledged"] = True
    assert pattern_for(doc) == "drift"


def test_pattern_for_missing_agent_assumes_running():
    doc = s.status()
    del doc["agent"]
    assert pattern_for(doc) == "ok"


@pytest.mark.parametrize("state", ["", None, "exploded"])
def test_pattern_for_unknown_state_is_agent_down(state):
    assert pattern_for(s.status(state)) == "agent_down"


def test_pattern_for_unreadable_status_is_agent_down():
    doc = unreadable(OSError("disk on fire"))
    assert pattern_for(doc) == "agent_down"
    assert "disk on fire" in doc["reason"]


def test_worst_table_prefers_state_then_frozen_then_lag():
    docs = [
        s.table("a", "ok", lag=5000.0),
        s.table("b", "lagging", lag=700.0),
        s.table("c", "lagging", lag=900.0),
        s.table("d", "ok", lag=None, last_sync=None),
    ]
    assert worst_table({"tables": docs})["name"] == "c"
    docs.append(s.table("e", "drift", lag=1.0, frozen=True))
    docs.append(s.table("f", "drift", lag=99.0))
    assert worst_table({"tables": docs})["name"] == "e"


def test_worst_table_never_synced_beats_any_lag():
    docs = [s.table("a", lag=10_000.0), s.table("b", lag=None, last_sync=None)]
    assert worst_table({"tables": docs})["name"] == "b"


def test_worst_table_none_without_tables():
    assert worst_table({"tables": []}) is None
    assert worst_table({}) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-11-23T14:02:00Z", datetime(2025, 11, 23, 14, 2, tzinfo=UTC)),
        ("2025-11-23T14:02:00+00:00", datetime(2025, 11, 23, 14, 2, tzinfo=UTC)),
        ("2025-11-23T14:02:00", datetime(2025, 11, 23, 14, 2, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
        (12, None),
    ],
)
def test_parse_time_reads_iso_and_refuses_the_rest(text, expected):
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    ("make", "word"),
    [
        (s.fresh_install, "NO SYNC YET"),  # the agent never ran: not LAGGING
        (s.starting, "STARTING"),  # its first pass is under way
        (s.lagging, "LAGGING"),
        (s.outage, "OUTAGE"),
        (s.maintenance, "MAINTENANCE"),
        (lambda: unreadable(OSError("gone")), "NO STATUS"),
    ],
)
def test_word_for_names_the_state_or_a_fresh_install(make, word):
    assert word_for(make()) == word


def test_word_for_a_source_down_at_first_start_is_still_an_outage():
    doc = {**s.fresh_install(), "state": "outage"}
    assert word_for(doc) == "OUTAGE"


def test_word_for_fresh_install_keeps_the_lights_of_a_stopped_agent():
    assert pattern_for(s.fresh_install()) == "agent_down"  # red and amber alternating
    assert pattern_for(s.starting()) == "lagging"
