"""``/metrics``: the status document as Prometheus text (names of BRIEF section 3).

A fresh registry per generation, filled by a collector from one reading, so the numbers
of one scrape always belong together. Timestamps, not ages: Prometheus computes ages
itself (``time() - appliance_last_success_timestamp_seconds``).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    StateSetMetricFamily,
)

from ..clock import parse_iso
from ..health.status import SEVERITY
from .reading import Snapshot

CONTENT_TYPE = CONTENT_TYPE_LATEST


class _Collector:
    """Yield the appliance's metrics from one snapshot."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap

    def collect(self) -> Iterator[Metric]:
        status = self.snap.status
        yield GaugeMetricFamily(
            "appliance_up", "1 when the sync agent is running.", value=1 if status["agent"]["running"] else 0
        )
        # An enum, the way prometheus_client's Enum exposes one: one series per state.
        yield StateSetMetricFamily(
            "appliance_state",
            "The health state of the appliance.",
            value={s: s == status["state"] for s in SEVERITY},
        )
        last = GaugeMetricFamily(
            "appliance_last_success_timestamp_seconds",
            "Unix time of the table's last successful sync.",
            labels=["table"],
        )
        lag = GaugeMetricFamily(
            "appliance_lag_seconds", "How far the table may be behind the source.", labels=["table"]
        )
        rows = CounterMetricFamily(
            "appliance_rows_synced", "Rows written by the sync, in total.", labels=["table"]
        )
        drift = GaugeMetricFamily(
            "appliance_schema_drift", "Schema or data contract changes not yet accepted.", labels=["table"]
        )
        for t in status["tables"]:
            name = [t["name"]]
            synced = parse_iso(t["last_sync"])
            if synced is not None:  # never synced: no sample, rather than a fake 0
                last.add_metric(name, synced.timestamp())
            if t["lag_seconds"] is not None:
                lag.add_metric(name, t["lag_seconds"])
            record = self.snap.records.get(t["name"], {})
            rows.add_metric(name, int(record.get("rows_synced_total") or 0))
            drift.add_metric(name, len(t["drift"]))
        yield from (last, lag, rows, drift)
        windows = status.get("maintenance") or {}
        ends = GaugeMetricFamily(
            "appliance_maintenance_end_timestamp_seconds",
            "Unix time the open maintenance window ends (no sample when none is open).",
        )
        active = parse_iso((windows.get("active") or {}).get("end"))
        if active is not None:
            ends.add_metric([], active.timestamp())
        yield ends
        nxt = GaugeMetricFamily(
            "appliance_maintenance_next_start_timestamp_seconds",
            "Unix time the next maintenance window opens.",
        )
        upcoming = parse_iso((windows.get("next") or {}).get("start"))
        if upcoming is not None:
            nxt.add_metric([], upcoming.timestamp())
        yield nxt
        expected = GaugeMetricFamily(
            "appliance_schema_drift_expected",
            "Drift entries that match an announced change.",
            labels=["table"],
        )
        for t in status["tables"]:
            expected.add_metric([t["name"]], sum(1 for d in t["drift"] if d.get("expected")))
        yield expected
        yield GaugeMetricFamily(
            "appliance_announced_changes",
            "Schema changes announced for the coming days (and the last week).",
            value=len(status.get("announcements") or []),
        )
        # Round trips set the pace over a distant link: the agent counts its statements
        # and leaves the total in the state store (web never imports sync).
        yield CounterMetricFamily(
            "appliance_source_statements",
            "Statements sent to the source database, in total.",
            value=int(self.snap.source.get("statements_total") or 0),
        )


def exposition(snap: Snapshot) -> bytes:
    """Return the Prometheus text exposition of ``snap``."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(snap))
    return generate_latest(registry)
