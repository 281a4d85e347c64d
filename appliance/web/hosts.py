"""Which host names the page answers to, and the check every request passes first.

DNS rebinding: a web page on the Internet can make a LAN user's browser resolve its own
name to the Pi's address and then talk to the page as a "same-origin" site. Checking the
``Host`` header against the names the Pi really has (and ``Origin`` on every POST) refuses
those requests before any view runs. ``[web] allowed_hosts`` replaces the defaults.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

from ..config import Config

_ANY = {"", "0.0.0.0", "::"}


def default_hosts(config: Config, lan_ip: Callable[[], str]) -> set[str]:
    """Return this machine's names and addresses: host name, NAME.local, LAN and loopback."""
    name = socket.gethostname().lower()
    hosts = {name, f"{name.split('.')[0]}.local", "localhost", "127.0.0.1", "::1", lan_ip()}
    try:
        hosts |= {str(info[4][0]) for info in socket.getaddrinfo(name, None)}
    except OSError:  # no resolvable own name (a fresh Pi without /etc/hosts entry): keep the rest
        pass
    if config.web.host not in _ANY:
        hosts.add(config.web.host.lower())
    return {h for h in hosts if h}


def allowed_hosts(config: Config, lan_ip: Callable[[], str]) -> frozenset[str]:
    """Return the host names the page answers to (``[web] allowed_hosts`` or the defaults)."""
    configured = config.web.allowed_hosts
    return frozenset(normal(h) for h in (configured or default_hosts(config, lan_ip)))


def normal(host: str) -> str:
    """Return a host name or address as compared: lower case, no port, no brackets, no final dot."""
    host = host.strip().lower()
    if host.startswith("["):  # [::1]:8080
        host = host[1 : host.find("]")] if "]" in host else host[1:]
    elif host.count(":") == 1:  # name:8080 (a bare IPv6 address has several colons)
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def host_ok(header: str | None, hosts: Iterable[str]) -> bool:
    """True when a request's ``Host`` names this machine."""
    return bool(header) and normal(header or "") in hosts


def origin_ok(origin: str | None, hosts: Iterable[str]) -> bool:
    """True when a POST's ``Origin`` is absent or one of this machine's pages."""
    if origin is None:
        return True  # old browsers and scripts send none; CSRF tokens still guard forms
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and host_ok(parts.netloc, hosts)
