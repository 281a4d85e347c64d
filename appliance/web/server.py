"""Serve the status page with waitress (never Flask's development server).

``PageServer`` runs it in a background thread and stops with ``close()`` (the demo and
the tests use it); ``serve`` is ``appliance web``: it blocks until SIGTERM or Ctrl-C,
tells systemd when it is ready and pets the watchdog after the page really answered.
"""

from __future__ import annotations

import http.client
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from waitress import wasyncore
from waitress.server import create_server

from ..config import Config
from .app import create_app
from .reading import lan_ip

log = logging.getLogger(__name__)

# Worker threads. Cached pages cost well under a millisecond of Python each, so more
# threads than waitress's default 4 mostly absorb slow clients; 8 measured best on
# the 2-core bench (README), more only added GIL contention.
THREADS = 8
_ANY = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class PageServer:
    """The status page on waitress, run in a background thread; ``close()`` stops it."""

    def __init__(self, config: Config, host: str | None = None, port: int | None = None,
                 threads: int = THREADS) -> None:
        host = config.web.host if host is None else host
        port = config.web.port if port is None else port
        self.app = create_app(config)
        self._map: dict = {}  # our own socket map, so close() can empty it from any thread
        try:
            self._server = create_server(self.app, map=self._map, host=host, port=port,
                                         threads=threads, ident="appliance")
        except OSError:
            wasyncore.close_all(self._map)  # the socket and wake-up pipe made before bind()
            raise
        self.host, self.port = host, int(self._server.effective_port)  # waitress gives text
        # The page (and its OLED picture) show where they are really served.
        site = self.app.extensions["appliance"]
        site.config = replace(config, web=replace(config.web, host=host, port=self.port))
        self._thread: threading.Thread | None = None

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


class _Stop:
    """SIGTERM / SIGINT set a flag (the handler does nothing else); restored on exit."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, object] = {}

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._set)
        return self

    def _set(self, *_) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


class _Systemd:
    """READY=1 and WATCHDOG=1 to systemd; nothing outside a Type=notify unit."""

    def __init__(self) -> None:
        self.notifier = None
        usec = int(os.environ.get("WATCHDOG_USEC") or 0)
        self.every = usec / 2e6 if usec else 20.0  # pet twice per watchdog period
        if os.environ.get("NOTIFY_SOCKET"):
            import sdnotify

            self.notifier = sdnotify.SystemdNotifier()

    def send(self, message: str) -> None:
        if self.notifier is not None:
            self.notifier.notify(message)


def serve(config: Config, host: str | None = None, port: int | None = None,
          threads: int = THREADS, echo: Callable[[str], None] = print) -> None:
    """Serve the status page until SIGTERM or Ctrl-C."""
    systemd = _Systemd()
    with _Stop() as stop, PageServer(config, host, port, threads) as server:
        server.start()
        echo(f"Status page: {server.url} (listening on {server.host or '*'}:{server.port}, "
             f"{threads} threads)")
        systemd.send("READY=1")
        next_pet = 0.0
        while not stop.requested:
            if systemd.notifier is not None and time.monotonic() >= next_pet:
                # Pet the watchdog only after the page really answered over its socket.
                if server.alive():
                    systemd.send("WATCHDOG=1")
                else:
                    log.warning("the status page did not answer /livez")
                next_pet = time.monotonic() + systemd.every
            time.sleep(0.2)
        systemd.send("STOPPING=1")
    echo("Status page stopped.")
