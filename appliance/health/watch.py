"""Who tells when the agent itself is dead: a process that is still alive (the page server).

The agent notifies state changes itself, so nothing would say that it stopped. The page
server looks every few seconds: when ``agent.running`` turns false (no heartbeat for
max(3 x interval, 30 s), BRIEF 9) it queues one "agent down" message, and one "runs
again" on recovery. The mark in the state store keeps it to one each, across restarts of
either process.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from ..clock import iso, utcnow
from ..config import Config
from . import announce, notify
from .status import build
from .store import StateStore

log = logging.getLogger(__name__)
MARK = "agent_watch"


def watch_agent(config: Config, store: StateStore, now: datetime | None = None) -> str | None:
    """Queue a notification when the agent stopped or came back; return "down", "up" or None."""
    now = now or utcnow()
    doc = build(config, store, now)
    agent = doc["agent"]
    if not agent.get("last_heartbeat"):
        return None  # never ran here (a fresh install): nothing stopped
    down = not agent["running"]
    mark = store.get(MARK)
    if mark is not None and bool(mark.get("down")) == down:
        return None
    store.put(MARK, {"down": down, "at": iso(now)})
    if mark is None and not down:
        return None  # the first look finds it running: nothing to say
    payload = notify.agent_message(down, doc)
    for channel in notify.channels(config):
        store.enqueue(channel, payload)
    store.event("agent", "the sync agent is not running" if down else "the sync agent runs again")
    return "down" if down else "up"


def cutoffs(config: Config, now: datetime) -> dict[str, str]:
    """Return the ISO time before which each kind of record goes ([retention])."""
    keep = config.retention
    return {
        "events": iso(now - timedelta(seconds=keep.events)),
        "runs": iso(now - timedelta(seconds=keep.runs)),
        "outbox": iso(now - timedelta(seconds=keep.outbox)),
    }


class AgentWatcher:
    """Look at the agent every ``every`` seconds in a thread, and deliver what is due.

    ``clock`` gives "now" for the look (tests move it instead of waiting). Nothing is
    created on a fresh install: the look waits for the agent's state store to exist.
    """

    def __init__(self, config: Config, every: float = 15.0, clock: Callable[[], datetime] = utcnow) -> None:
        self.config, self.every, self.clock = config, every, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="agent-watch", daemon=True)

    def look(self) -> str | None:
        """Look once: queue an agent down/up message if due, deliver the outbox; return which."""
        if not (Path(self.config.state_dir) / "state.sqlite").exists():
            return None
        with StateStore(self.config.state_dir) as store:
            now = self.clock()
            said = watch_agent(self.config, store, now)
            announce.remind(self.config, store, now.astimezone().date())
            store.trim(cutoffs(self.config, now))
            notify.Sender(self.config).deliver_due(store)
        return said

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.look()
            except Exception:  # a busy or damaged store: the page goes on, and so does the watch
                log.exception("watching the agent failed; trying again")

    def start(self) -> AgentWatcher:
        self._thread.start()
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=notify.TIMEOUT * 3)
