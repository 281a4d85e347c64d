"""The status page: what an engineer on the LAN sees (BRIEF 4.7).

A reader of the state store only (BRIEF 2): it never imports the sync agent, the
source, the tunnel or the link, so it works while the agent is down.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that registering ``appliance web`` does not load Flask for every command.
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
