"""/metrics: Prometheus text with the names of BRIEF section 3; timestamps, not ages."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from appliance.clock import parse_iso
from appliance.health.store import StateStore

from .states import fill


def _samples(client) -> dict[tuple, float]:
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    out = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_metrics_names_and_values(config, client):
    fill(config, "lagging")
    samples = _samples(client)
    status = client.get("/api/status").json
    orders = (("table", "public.orders"),)
    assert samples[("appliance_up", ())] == 1
    assert samples[("appliance_state", (("appliance_state", "lagging"),))] == 1
    assert samples[("appliance_state", (("appliance_state", "ok"),))] == 0
    last = parse_iso(status["tables"][0]["last_sync"]).timestamp()
    assert samples[("appliance_last_success_timestamp_seconds", orders)] == pytest.approx(last)
    assert samples[("appliance_lag_seconds", (("table", "public.items"),))] == pytest.approx(900, abs=10)
    assert samples[("appliance_rows_synced_total", orders)] == 1500
    assert samples[("appliance_schema_drift", orders)] == 0


def test_metrics_drift_counts_changes(config, client):
    fill(config, "drift")
    samples = _samples(client)
    assert samples[("appliance_schema_drift", (("table", "public.orders"),))] == 1
    assert samples[("appliance_state", (("appliance_state", "drift"),))] == 1


def test_metrics_first_boot_has_no_fake_timestamps(config, client):
    samples = _samples(client)
    assert samples[("appliance_up", ())] == 0
    assert not [
        k for k in samples if k[0] in ("appliance_last_success_timestamp_seconds", "appliance_lag_seconds")
    ]
    assert samples[("appliance_rows_synced_total", (("table", "public.orders"),))] == 0


def test_metrics_agent_down(config, client):
    fill(config, "ok", agent_ago=3600)
    assert _samples(client)[("appliance_up", ())] == 0
    with StateStore(config.state_dir) as store:
        assert store.tables()  # the tables are still reported from the store


def test_metrics_maintenance_and_announcements(config, client):
    from datetime import date

    from appliance.clock import utcnow
    from appliance.health import announce, maintenance

    fill(config, "ok")
    before = _samples(client)
    assert ("appliance_maintenance_end_timestamp_seconds", ()) not in before
    assert before[("appliance_announced_changes", ())] == 0
    with StateStore(config.state_dir) as store:
        window = maintenance.start_now(config, store, 3600, "upgrade", utcnow(), by="test")
        announce.announce(
            config, store, "public.orders", "add column channel text", date(2099, 1, 1), "", "t", utcnow()
        )
    client.application.extensions["appliance"].cache.clear()
    samples = _samples(client)
    assert samples[("appliance_maintenance_end_timestamp_seconds", ())] == pytest.approx(
        window.end.timestamp()
    )
    assert samples[("appliance_announced_changes", ())] == 1
    assert samples[("appliance_schema_drift_expected", (("table", "public.orders"),))] == 0
