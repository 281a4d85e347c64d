"""What every long-running process shares with systemd: readiness, watchdog, clean stop.

The agent, the page server and the indicator are ``Type=notify`` units with a
``WatchdogSec``. Each says ``READY=1`` once started, ``WATCHDOG=1`` only after a real
piece of work (a pass, an answered page, a drawn frame), and ``STOPPING=1`` on its way
out. Outside systemd (no ``NOTIFY_SOCKET``) every call is a no-op.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Mapping
from typing import Any

from .errors import ApplianceError


class Systemd:
    """Send sd_notify messages; nothing at all outside a ``Type=notify`` unit."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self._notifier: Any = None
        self._status: str | None = None
        usec = int(environ.get("WATCHDOG_USEC") or 0)
        # Pet twice per watchdog period; 20 s when systemd set none (a generous default).
        self.pet_every = usec / 2e6 if usec > 0 else 20.0
        if environ.get("NOTIFY_SOCKET"):
            # sdnotify reads NOTIFY_SOCKET from the process; ``environ`` is consulted only so
            # that nothing is opened outside systemd.
            import sdnotify

            self._notifier = sdnotify.SystemdNotifier()

    @property
    def active(self) -> bool:
        """True inside a ``Type=notify`` unit."""
        return self._notifier is not None

    def _send(self, *lines: str) -> None:
        if self._notifier is not None:
            self._notifier.notify("\n".join(lines))

    def ready(self, status: str | None = None) -> None:
        """Say start-up is done."""
        self._send("READY=1", *([f"STATUS={status}"] if status else []))
        self._status = status

    def alive(self, status: str | None = None) -> None:
        """Pet the watchdog after real work; pass the status line on when it changed."""
        lines = ["WATCHDOG=1"]
        if status is not None and status != self._status:
            lines.append(f"STATUS={status}")
            self._status = status
        self._send(*lines)

    def stopping(self) -> None:
        """Say we are stopping on purpose (systemd then does not count it as a failure)."""
        self._send("STOPPING=1")

    def close(self) -> None:
        """Close the notification socket."""
        if self._notifier is not None and self._notifier.socket is not None:
            self._notifier.socket.close()
        self._notifier = None

    def __enter__(self) -> Systemd:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StopFlag:
    """Set by SIGTERM or SIGINT; the handler only sets the flag, the loop polls or waits on it.

    As a context manager it installs the handlers (from the main thread only: elsewhere
    Python refuses signal handlers) and restores the previous ones on exit.
    """

    def __init__(self) -> None:
        self._event = threading.Event()
        self._previous: dict[int, Any] = {}

    def set(self, *_: object) -> None:
        """Ask the loop to stop (usable as a signal handler)."""
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    __call__ = is_set

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return True at once when a stop was asked for."""
        return self._event.wait(seconds)

    def install(self) -> StopFlag:
        """Make SIGTERM and SIGINT set this flag; return it."""
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._previous[sig] = signal.signal(sig, self.set)
        return self

    def restore(self) -> None:
        """Put back the handlers that were there before ``install``."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def __enter__(self) -> StopFlag:
        return self.install()

    def __exit__(self, *exc: object) -> None:
        self.restore()


class AlreadyRunning(ApplianceError, RuntimeError):
    """Another agent already runs with this state folder: stop it first, or use another state_dir."""


class SingleInstance:
    """An exclusive lock on a file, held while the process lives (the kernel drops it on exit,
    kill -9 included). The file holds the holder's pid, for the refusal message."""

    def __init__(self, path: str | os.PathLike, what: str = "agent") -> None:
        self.path, self.what = os.fspath(path), what
        self._fd: int | None = None

    def __enter__(self) -> SingleInstance:
        import fcntl

        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise AlreadyRunning(
                f"another {self.what} (pid {holder}) already runs with {os.path.dirname(self.path)}. "
                f"Stop it first (systemctl stop appliance-sync), or give this one its own "
                f"appliance.state_dir."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None
