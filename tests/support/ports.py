"""Waiting for a TCP port on loopback to accept connections (for tunnels tests start)."""

from __future__ import annotations

import socket
import time


def wait_port(port: int, deadline: float) -> bool:
    """Return True once 127.0.0.1:port accepts connections, False at the deadline."""
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False
