"""Listing every whole physical disk of this machine (macOS or Linux), unjudged."""

from __future__ import annotations

from appliance.flash.drive import Drive


def list_drives(platform: str, *, include_loop: bool = False) -> list[Drive]:
    """Return every whole physical disk of this machine, unjudged."""
    if platform == "darwin":
        from appliance.flash import drives_darwin

        return drives_darwin.list_drives()
    from appliance.flash import drives_linux

    return drives_linux.list_drives(include_loop=include_loop)
