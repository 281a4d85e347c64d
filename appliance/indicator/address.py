"""Where people find the status page: the Pi's LAN address and the page's URL."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from ..config import WebSettings

_ANY = ("", "0.0.0.0", "::")
_PROBE = ("192.0.2.1", 9)  # TEST-NET-1: connect() on UDP only picks a route, sends nothing


def lan_ip() -> str | None:
    """Return the address this machine uses to reach the network, or None when offline."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(_PROBE)
            return s.getsockname()[0]
    except OSError:
        return None


@dataclass(frozen=True)
class Address:
    """The Pi's IP and the status page on it (None when there is no network)."""

    ip: str | None
    port: int

    @property
    def short(self) -> str:
        """Return "IP:port" for the bottom line of the display."""
        return f"{_host(self.ip)}:{self.port}" if self.ip else "no network"

    @property
    def url(self) -> str | None:
        """Return the status page's URL."""
        return f"http://{_host(self.ip)}:{self.port}/" if self.ip else None


def _host(ip: str | None) -> str:
    return f"[{ip}]" if ip and ":" in ip else str(ip)


def page_address(web: WebSettings) -> Address:
    """Return where the status page of ``[web]`` can be reached from the LAN."""
    return Address(lan_ip() if web.host in _ANY else web.host, web.port)
