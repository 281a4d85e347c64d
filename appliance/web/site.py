"""What every request of one status-page app shares, and how a view finds it."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask import current_app

from ..config import Config
from .cache import RenderCache
from .reading import Snapshot, read_snapshot
from .throttle import Throttle


@dataclass
class Site:
    """What every request of one app shares: the config, the cache, the actions' password."""

    config: Config
    cache: RenderCache
    password: str | None  # [web] api_token: when set, actions need it
    hosts: frozenset[str] = frozenset()  # the Host names this page answers to (hosts.py)
    throttle: Throttle = field(default_factory=Throttle)  # wrong tokens per client

    def snapshot(self) -> Snapshot:
        """Return this generation's reading of the state store."""
        return self.cache.get("snapshot", lambda: read_snapshot(self.config))


def site() -> Site:
    """Return the Site of the app handling the current request."""
    return current_app.extensions["appliance"]
