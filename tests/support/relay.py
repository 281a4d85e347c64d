"""A slow, distant link on loopback: a TCP relay with a bandwidth limit and a one-way delay.

The appliance syncs over a site's uplink (10-50 Mbit/s, 20-100 ms round trips), not over
loopback. Put this relay in front of the test sshd and point ``ssh.port`` at it:

    with Relay(sshd.port, mbit=20, delay=0.025) as relay:   # 20 Mbit/s, 50 ms round trip
        ... ssh.port = relay.port ...
        relay.stall()    # stops forwarding, keeps every socket open (a hung router)
        relay.resume()

Each direction is one link shared by all connections: a chunk of n bytes occupies it for
n / rate seconds after the previous chunk, then arrives ``delay`` seconds later. What a
direction holds in flight is bounded (about rate x delay plus a small buffer), so the
ends feel TCP back-pressure as they would behind a real bottleneck. Loopback only; the
relay closes itself after ``lifetime`` seconds, so a forgotten one never outlives a run.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections import deque

CHUNK = 16384
BUFFER = 65536  # bytes a direction may queue beyond what is in flight (the router's buffer)


class Lane:
    """One direction of the link: serialises chunks at ``rate`` bytes/s, then delays them."""

    def __init__(self, rate: float, delay: float) -> None:
        self.rate, self.delay = rate, delay
        self.cap = int(rate * delay) + BUFFER
        self._free_at = 0.0
        self._lock = threading.Lock()
        self.bytes = 0

    def schedule(self, n: int, now: float) -> float:
        """Return when a chunk of ``n`` bytes handed over ``now`` arrives at the far end."""
        with self._lock:
            start = max(now, self._free_at)
            self._free_at = start + n / self.rate
            self.bytes += n
            return self._free_at + self.delay


class _Pump:
    """Move bytes from one socket to another along a lane: a reader and a writer thread."""

    def __init__(self, relay: Relay, lane: Lane, src: socket.socket, dst: socket.socket) -> None:
        self.relay, self.lane, self.src, self.dst = relay, lane, src, dst
        self.queue: deque[tuple[float, bytes]] = deque()
        self.queued = 0
        self.cond = threading.Condition()
        self.done = False
        for target in (self._read, self._write):
            threading.Thread(target=target, daemon=True).start()

    def _read(self) -> None:
        self.src.settimeout(0.2)
        while not self.relay.closed.is_set():
            with self.cond:  # hold while stalled, or while the lane's buffer is full
                while not self.relay.closed.is_set() and (
                    self.relay.stalled.is_set() or self.queued >= self.lane.cap
                ):
                    self.cond.wait(0.05)
            try:
                data = self.src.recv(CHUNK)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            with self.cond:
                if data:
                    self.queue.append((self.lane.schedule(len(data), time.monotonic()), data))
                    self.queued += len(data)
                else:  # end of stream: passed on after what is still in flight
                    self.queue.append((time.monotonic() + self.lane.delay, b""))
                self.cond.notify_all()
            if not data:
                return

    def _write(self) -> None:
        while not self.relay.closed.is_set():
            with self.cond:
                if not self.queue or self.relay.stalled.is_set():
                    self.cond.wait(0.05)
                    continue
                due, data = self.queue[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.cond.wait(wait)
                    continue
                self.queue.popleft()
                self.queued -= len(data)
                self.cond.notify_all()
            try:
                if not data:
                    self.dst.shutdown(socket.SHUT_WR)
                    return
                self.dst.sendall(data)
            except OSError:
                return


class Relay:
    """Listen on 127.0.0.1 and relay every connection to a loopback port over a slow link."""

    def __init__(
        self,
        target_port: int,
        *,
        mbit: float = 20.0,
        delay: float = 0.025,
        target_host: str = "127.0.0.1",
        lifetime: float = 1800.0,
    ) -> None:
        if not ipaddress.ip_address(target_host).is_loopback:
            raise ValueError("the relay forwards to loopback only")
        self.target = (target_host, target_port)
        rate = mbit * 1_000_000 / 8
        self.up, self.down = Lane(rate, delay), Lane(rate, delay)  # to the target, back
        self.lifetime = lifetime
        self.stalled, self.closed = threading.Event(), threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]

    def start(self) -> Relay:
        threading.Thread(target=self._accept, daemon=True).start()
        timer = threading.Timer(self.lifetime, self.close)
        timer.daemon = True
        timer.start()
        return self

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self.closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sockets += [client, server]
            _Pump(self, self.up, client, server)
            _Pump(self, self.down, server, client)

    def stall(self) -> None:
        """Stop forwarding in both directions; every socket stays open."""
        self.stalled.set()

    def resume(self) -> None:
        self.stalled.clear()

    @property
    def bytes_down(self) -> int:
        """Bytes carried from the target back to the clients (what a copy downloads)."""
        return self.down.bytes

    def close(self) -> None:
        self.closed.set()
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()

    def __enter__(self) -> Relay:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
