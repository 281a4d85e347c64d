"""Serve the status page with waitress (never Flask's development server).

``PageServer`` runs it in a background thread and stops with ``close()`` (the demo and
the tests use it); ``serve`` is ``appliance web``: it blocks until SIGTERM or Ctrl-C,
tells systemd when it is ready and pets the watchdog after the page really answered.
Ready bytes of the most polled pages are answered on waitress's I/O thread (``_Dispatcher``);
``connections`` keeps slow or greedy clients from holding every connection.
"""

from __future__ import annotations

import http.client
import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import create_server
from waitress.task import ThreadedTaskDispatcher

from ..config import Config
from ..health.watch import AgentWatcher
from ..service import StopFlag, Systemd
from .app import FastPath, create_app
from .connections import PER_CLIENT as PER_CLIENT  # re-exported: the tests' and docs' name
from .connections import REQUEST_DEADLINE, ChannelGuard
from .reading import lan_ip

log = logging.getLogger(__name__)

# Worker threads, for everything but the ready hot pages (those never reach them): a
# render, another page, an action. 2, 4, 8 and 16 measured alike on the 2-core bench once
# the hot pages stopped reaching them; 8 lets a slow render not hold up the other pages.
THREADS = 8
WATCH_EVERY = 15.0  # seconds between looks at the agent: its notification within a minute
MAX_BODY = 64 * 1024  # the largest form of the page is a few hundred bytes
CHANNEL_TIMEOUT = 15  # seconds of silence before waitress closes a connection (its default: 120)
_ANY = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class _Dispatcher(ThreadedTaskDispatcher):
    """Answer ready hot pages on waitress's I/O thread; hand everything else to the workers.

    A ready page costs about 0.2 ms of CPU. Handing it to a worker thread and back (a
    condition variable there, the trigger pipe back) cost as much again, 6 to 9 context
    switches per request and a GIL hand-over each way: at 50 connections that set the
    p99 (BRIEF 6). Answered here: 0.3 to 0.5 switches, about 1.4 times the requests/s.
    Waitress parses requests on its I/O thread and calls ``add_task`` there; a hot GET is
    queued here instead and answered by waitress's own ``channel.service()`` (so HTTP
    framing, keep-alive and HEAD stay waitress's) when the I/O thread next runs the
    trigger's thunks: one wake-up answers every request of that pass.
    """

    def __init__(self, fast: FastPath) -> None:
        super().__init__()  # no threads yet: set_thread_count() starts them
        self.fast = fast
        self._lock = threading.Lock()
        self._hot: deque = deque()  # (channel, route) of hot GETs for the I/O thread
        self._scheduled = False  # an _answer is pending or running: it will see _hot

    def add_task(self, channel: HTTPChannel) -> None:
        request = channel.requests[0]
        route = None if request.error else self.fast.route(request.command, request.path, request.query)
        if route is None:
            super().add_task(channel)
            return
        with self._lock:
            self._hot.append((channel, route))
            pull = not self._scheduled
            self._scheduled = True
        # Never from inside _answer (still scheduled then): the trigger holds the lock that
        # pull_trigger takes while it runs its thunks.
        if pull:
            channel.server.trigger.pull_trigger(self._answer)

    def _answer(self) -> None:
        """Answer the queued hot requests (on the I/O thread: a thunk of its trigger)."""
        while True:
            with self._lock:
                if not self._hot:
                    self._scheduled = False
                    return
                channel, route = self._hot.popleft()
            if not channel.requests:  # closed meanwhile
                continue
            # A miss renders on a worker, and so do pipelined requests: nothing here may
            # wait for the output buffer to drain (no one else would send it), and with one
            # request and nothing unsent, waitress's service() never waits.
            if len(channel.requests) > 1 or channel.total_outbufs_len or self.fast.ready(route) is None:
                super().add_task(channel)
                continue
            try:
                channel.service()
            except Exception:  # service() handles the app's errors; this is waitress's own
                channel.handle_error()


class PageServer:
    """The status page on waitress, run in a background thread; ``close()`` stops it."""

    def __init__(
        self,
        config: Config,
        host: str | None = None,
        port: int | None = None,
        threads: int = THREADS,
        watch_every: float | None = WATCH_EVERY,
        request_deadline: float = REQUEST_DEADLINE,
    ) -> None:
        host = config.web.host if host is None else host
        port = config.web.port if port is None else port
        self.app = create_app(config)
        self._map: dict = {}  # our own socket map, so close() can empty it from any thread
        fast = self.app.wsgi_app
        assert isinstance(fast, FastPath)  # create_app wraps the app in its fast path
        dispatcher = _Dispatcher(fast)
        try:
            # _dispatcher: waitress's hook for its own task dispatcher (there since 1.0).
            self._server = create_server(
                self.app,
                map=self._map,
                host=host,
                port=port,
                threads=threads,
                ident="appliance",
                # A neighbour on the LAN must not fill the SD card or hold the page: bodies
                # over 64 KiB are refused from their Content-Length (413, nothing spooled),
                # and a connection that sends nothing for CHANNEL_TIMEOUT seconds is closed.
                max_request_body_size=MAX_BODY,
                channel_timeout=CHANNEL_TIMEOUT,
                _dispatcher=dispatcher,
            )
        except OSError:
            wasyncore.close_all(self._map)  # the socket and wake-up pipe made before bind()
            raise
        dispatcher.set_thread_count(threads)
        # waitress makes each connection with the server's channel_class: there a client's
        # connections are counted, a request gets its deadline, and the connection that waited
        # longest makes room for a new one near the limit (connections.py: slowloris).
        self._server.channel_class = ChannelGuard(request_deadline)
        self.host, self.port = host, int(self._server.effective_port)  # waitress gives text
        # The page (and its OLED picture) show where they are really served.
        site = self.app.extensions["appliance"]
        site.config = replace(config, web=replace(config.web, host=host, port=self.port))
        self._thread: threading.Thread | None = None
        # The page outlives the agent: it says when the agent stops (health/watch.py).
        self.watcher = AgentWatcher(config, watch_every) if watch_every else None

    @property
    def url(self) -> str:
        """Return the URL people on the LAN open (the LAN address when bound to all)."""
        host = lan_ip() if self.host in _ANY else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def local_url(self) -> str:
        """Return a URL of the page that this machine itself can open."""
        host = _ANY.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    def start(self) -> PageServer:
        """Start serving in a daemon thread; return self."""
        self._thread = threading.Thread(target=self._server.run, name="web", daemon=True)
        self._thread.start()
        if self.watcher is not None:
            self.watcher.start()
        return self

    def alive(self, timeout: float = 5.0) -> bool:
        """Return True when ``/livez`` answers 200 over a real socket."""
        host = _ANY.get(self.host, self.host)
        conn = http.client.HTTPConnection(host, self.port, timeout=timeout)
        try:
            conn.request("GET", "/livez")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def close(self) -> None:
        """Stop serving: close the sockets, stop the workers, wait for the thread."""
        if self.watcher is not None:
            self.watcher.close()
        # Workers first: a request still running must find the loop's wake-up pipe open.
        self._server.task_dispatcher.shutdown()
        if self._thread is not None and self._thread.is_alive():
            # Close the sockets inside the loop's own thread (closing them from here races
            # with its poll()); an empty map then ends the loop.
            self._server.trigger.pull_trigger(lambda: wasyncore.close_all(self._map))
            self._thread.join(timeout=10)
        else:
            wasyncore.close_all(self._map)
        self._thread = None

    def __enter__(self) -> PageServer:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(
    config: Config,
    host: str | None = None,
    port: int | None = None,
    threads: int = THREADS,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the status page until SIGTERM or Ctrl-C."""
    with (
        Systemd(config.environ) as systemd,
        StopFlag() as stop,
        PageServer(config, host, port, threads) as server,
    ):
        server.start()
        listening = f"{server.host or '*'}:{server.port}"
        echo(f"Status page: {server.url} (listening on {listening}, {threads} threads)")
        systemd.ready()
        while not stop.is_set():
            # Pet the watchdog only after the page really answered over its socket.
            if systemd.active and server.alive():
                systemd.alive()
            elif systemd.active:
                log.warning("the status page did not answer /livez")
            if stop.wait(systemd.pet_every):
                break
        systemd.stopping()
    echo("Status page stopped.")
