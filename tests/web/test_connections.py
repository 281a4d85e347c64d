"""Slow and greedy clients against the real server: a request's deadline, and eviction of the
connection that waited longest when waitress nears its connection limit."""

from __future__ import annotations

import re
import select
import socket
import time

from waitress.adjustments import Adjustments

from appliance.web.connections import PER_CLIENT
from appliance.web.server import PageServer

from .states import fill

HEAD = b"GET /livez HTTP/1.1\r\nHost: localhost\r\n"


def _connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source, 0))


def _half_sent(port: int, source: str) -> socket.socket:
    sock = _connect(port, source)
    sock.sendall(HEAD)  # never finished
    return sock


def _answered(sock: socket.socket) -> bool:
    """Send a whole request on ``sock``; return True when it is answered 200 (read whole, so
    the connection is ready for the next one)."""
    sock.sendall(HEAD + b"\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert length is not None, head
    while len(body) < int(length.group(1)):
        chunk = sock.recv(4096)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")


def _closed(sock: socket.socket, within: float) -> bool:
    """Return True when the server closes ``sock`` within ``within`` seconds."""
    readable, _, _ = select.select([sock], [], [], within)
    if not readable:
        return False
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_connections_a_request_not_sent_whole_in_time_is_closed(config):
    fill(config, "ok")
    with PageServer(config, "127.0.0.1", 0, watch_every=None, request_deadline=1.0).start() as server:
        idle = _connect(server.port)
        assert _answered(idle)  # a whole request, then a keep-alive connection left idle
        slow = _half_sent(server.port, "127.0.0.1")
        started, closed = time.monotonic(), False
        while not closed and time.monotonic() - started < 10:
            try:
                slow.sendall(b"X-Trickle: 1\r\n")  # a byte now and then keeps waitress's idle timeout away
            except OSError:
                closed = True
                break
            closed = _closed(slow, 0.2)
        assert closed, "a request trickled in for 10 s was not closed at its 1 s deadline"
        assert time.monotonic() - started >= 1.0  # the deadline, not something sooner
        assert _answered(idle)  # idle longer than the deadline, but its request had arrived whole
        idle.close()
        slow.close()


def test_connections_near_the_limit_the_oldest_unfinished_request_makes_room(config):
    fill(config, "ok")
    limit = Adjustments.connection_limit  # waitress stops accepting at this many (its map)
    held: list[socket.socket] = []
    with PageServer(config, "127.0.0.1", 0, watch_every=None).start() as server:
        try:
            oldest = [_half_sent(server.port, "127.0.0.2") for _ in range(3)]
            held += oldest
            probe = _connect(server.port)  # once answered, the loop has read the three above
            assert _answered(probe)
            probe.close()
            for address in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
                already = len(oldest) if address == "127.0.0.2" else 0
                held += [_half_sent(server.port, address) for _ in range(PER_CLIENT - already)]
            idle = _connect(server.port)
            assert _answered(idle)  # a visitor's keep-alive connection
            # Here the map holds the listening socket, the wake-up pipe and 97 connections:
            # each new one would bring waitress to its limit, so one that waits must go.
            assert len(held) + 1 + 2 == limit - 1
            newest = [_half_sent(server.port, "127.0.0.5") for _ in range(3)]
            held += newest
            visitor = _connect(server.port)
            assert _answered(visitor)
            visitor.close()
            assert all(_closed(s, 5) for s in oldest), "the oldest unfinished requests were kept"
            assert not any(_closed(s, 0) for s in newest)
            assert _answered(idle)  # idle keep-alive connections go after unfinished requests
            idle.close()
        finally:
            for s in held:
                s.close()
