"""The real agent loop in a thread, for the outage and notification tests."""

from __future__ import annotations

import threading
import time

from appliance.config import load
from appliance.health.status import current_status
from appliance.health.store import StateStore
from appliance.sync.agent import Agent
from appliance.sync.link import SourceLink
from appliance.sync.replica import Replica


class RunningAgent:
    """The real agent loop in a thread, with a long interval: only probes can be fast."""

    def __init__(self, cfg_path, interval: float = 60) -> None:
        self.config = load(cfg_path)
        self.store = StateStore(self.config.state_dir)
        self.replica = Replica(self.config.replica_url)
        self.link = SourceLink(self.config)
        self.agent = Agent(
            self.config, self.link, self.replica, self.store, interval=interval, probe_interval=1
        )
        self.thread = threading.Thread(target=self.agent.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.agent.stopping.set()
        self.thread.join(timeout=60)
        self.link.close()
        self.replica.close()
        self.store.close()

    def wait_state(self, state: str, timeout: float = 60.0, reason: str = "") -> tuple[dict, float]:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            doc = current_status(self.config)
            if doc["state"] == state and doc["reason"].startswith(reason):
                return doc, time.monotonic() - t0
            time.sleep(0.1)
        raise AssertionError(f"state never became {state}: {current_status(self.config)}")
