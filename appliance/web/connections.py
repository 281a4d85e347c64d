"""The page's connections: no client, slow or greedy, keeps a new visitor out.

Waitress holds at most ``connection_limit`` (100) connections and stops accepting at that
number, and a connection that sends one byte every CHANNEL_TIMEOUT (15 s) counts as alive:
a neighbour holding about 100 half-sent requests (slowloris) took the page offline. Three
guards, all on waitress's I/O thread:

- PER_CLIENT: one address may hold 32 connections (a browser uses about 6); more are
  closed at once.
- REQUEST_DEADLINE: a request must arrive whole, head and body, within 10 s of its first
  byte (the page's largest form is a few hundred bytes), or its connection is closed.
- Eviction: a new connection that would bring waitress to its limit first closes the one
  that has waited longest for its client: an unfinished request first, then an idle
  keep-alive connection, then one whose client does not read its answer. Connections
  whose request is being answered are never closed. Many addresses (IPv6 gives a host
  plenty) therefore only churn each other's connections; a new visitor gets the page.

Waitress internals used (pyproject pins waitress below 4): the server's ``channel_class``
(called for each accepted connection, as waitress's own class would be) and HTTPChannel's
``request`` (being received), ``requests`` (being answered), ``received``, ``readable``,
``will_close``, ``last_activity``, ``total_outbufs_len`` and ``handle_close``. The
deadline is looked at in ``readable``, which waitress's loop asks every channel at least
once per ``asyncore_loop_timeout`` (1 s).
"""

from __future__ import annotations

import logging
import time

from waitress.channel import HTTPChannel

log = logging.getLogger(__name__)

PER_CLIENT = 32  # connections one address may hold open (a browser uses about 6)
REQUEST_DEADLINE = 10.0  # seconds from a request's first byte until it must have arrived whole
LOG_EVERY = 60.0  # seconds between two journal lines about the same guard (an attack is many)


class _Tally:
    """Count one kind of refusal; log it at most once per LOG_EVERY, with the count."""

    def __init__(self, what: str) -> None:
        self.what, self.count, self._next = what, 0, 0.0

    def add(self, client: str) -> None:
        self.count += 1
        now = time.monotonic()
        if now >= self._next:
            log.warning("%s (%d since the last such line; the latest from %s)", self.what, self.count, client)
            self.count, self._next = 0, now + LOG_EVERY


class GuardedChannel(HTTPChannel):
    """Waitress's channel, closed when a request does not arrive whole in time."""

    will_close: bool  # waitress's (annotated only, for the type checker)
    deadline = REQUEST_DEADLINE
    expired: _Tally | None = None
    # When the first byte of the unfinished request arrived (time.monotonic), else None.
    waiting_since: float | None = None

    def received(self, data: bytes) -> bool:
        before = self.request
        done = super().received(data)
        if self.request is None:
            self.waiting_since = None
        elif self.request is not before:  # a new request began in this chunk
            self.waiting_since = time.monotonic()
        return done

    def readable(self) -> bool:
        if self.waiting_since is not None and not self.will_close:
            now = time.monotonic()
            if self.requests:
                # A pipelined request waits behind one being answered: the wait is ours,
                # so its client's time starts when the answer is done.
                self.waiting_since = now
            elif now - self.waiting_since > self.deadline:
                if self.expired is not None:
                    self.expired.add(client_of(self))
                self.will_close = True  # waitress's own way: writable(), then handle_close()
        return super().readable()


def client_of(channel: HTTPChannel) -> str:
    """Return the address a channel's client connects from."""
    addr = channel.addr
    return str(addr[0] if isinstance(addr, tuple) else addr)


def _waiting(channel: HTTPChannel) -> tuple[int, float] | None:
    """Return how long ``channel`` has waited for its client, as a sort key (oldest first);
    None when it is being answered or already closing."""
    if channel.requests or channel.will_close:
        return None
    since = getattr(channel, "waiting_since", None)
    if since is not None:
        return (0, since)  # an unfinished request: the slowloris
    return (2 if channel.total_outbufs_len else 1, channel.last_activity)


class ChannelGuard:
    """Waitress's ``channel_class``: make a GuardedChannel for each accepted connection."""

    def __init__(self, deadline: float = REQUEST_DEADLINE, per_client: int = PER_CLIENT) -> None:
        self.deadline, self.per_client = deadline, per_client
        self.refused = _Tally(f"refused connections: a client already held {per_client}")
        self.evicted = _Tally("closed the connection that waited longest: the page was near its limit")
        self.expired = _Tally(f"closed requests not sent whole within {deadline:g} s")

    def __call__(self, server, conn, addr, adj, map=None) -> GuardedChannel | None:  # noqa: A002
        channels = [d for d in (map or {}).values() if isinstance(d, HTTPChannel)]
        client = str(addr[0] if isinstance(addr, tuple) else addr)
        if sum(1 for c in channels if client_of(c) == client) >= self.per_client:
            self.refused.add(client)
            conn.close()
            return None
        # The map also holds the listening socket and the wake-up pipe; waitress stops
        # accepting once the map reaches the limit, so keep one place free.
        if len(map or {}) + 1 >= adj.connection_limit:
            self._evict(channels)
        channel = GuardedChannel(server, conn, addr, adj, map=map)
        channel.deadline, channel.expired = self.deadline, self.expired
        return channel

    def _evict(self, channels: list[HTTPChannel]) -> None:
        """Close the channel that has waited longest for its client, if any may be closed."""
        keyed = [(key, c) for c in channels if (key := _waiting(c)) is not None]
        if not keyed:
            return  # every connection is being answered: waitress waits, as it always did
        _, victim = min(keyed, key=lambda kc: kc[0])
        self.evicted.add(client_of(victim))
        victim.handle_close()
