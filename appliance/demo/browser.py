"""Headless Chromium over its DevTools pipe: open a page at a size, save a screenshot.

``--remote-debugging-pipe`` makes Chromium read DevTools commands from its file
descriptor 3 and write replies to 4, each a JSON text ending in a NUL byte. So the
pictures need Chromium and nothing else: no websocket library, no debugging port open
to other users of the machine.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..errors import ApplianceError

FLAGS = [
    "--headless",
    "--no-sandbox",  # as root in a container there is no sandbox to have
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--force-color-profile=srgb",  # the same colours on every machine
    "--no-proxy-server",  # the pages are on loopback: nothing to fetch through a proxy
    "--remote-debugging-pipe",
]


# Debian's and other Linuxes' names, then the macOS applications.
BINARIES = (
    "chromium",
    "chromium-browser",
    "google-chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)


class BrowserError(ApplianceError, RuntimeError):
    """Chromium could not be started or did not answer."""


def find() -> str:
    """Return the Chromium binary; raise BrowserError saying how to get one when there is none."""
    found = next((b for b in map(shutil.which, BINARIES) if b), None)
    if found is None:
        raise BrowserError(
            "the status page's pictures need Chromium, which is not installed here. "
            "Install it (Debian: sudo apt-get install chromium; a Mac: Google Chrome or Chromium "
            "in /Applications) and run scripts/demo --pictures again."
        )
    return found


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """Return the pipe ``fds`` moved to descriptors above 9 (the originals closed)."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


class Chromium:
    """One headless Chromium with one tab; ``close()`` ends the process."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0) -> None:
        self.timeout = timeout
        to_chromium, commands = _high(os.pipe())
        replies, from_chromium = _high(os.pipe())
        # bash puts the two pipe ends on the descriptors Chromium expects (3 and 4);
        # they start above 9, so neither is one of those two already.
        script = f'exec "$0" "$@" 3<&{to_chromium} 4>&{from_chromium} {to_chromium}<&- {from_chromium}>&-'
        try:
            self.proc = subprocess.Popen(
                ["bash", "-c", script, binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                pass_fds=(to_chromium, from_chromium),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(to_chromium)
            os.close(from_chromium)
        self._out, self._in = commands, replies
        self._buffer = b""
        self._next = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._in], [], [], left)[0]:
                raise BrowserError(f"Chromium did not answer within {self.timeout:.0f}s")
            chunk = os.read(self._in, 1 << 20)
            if not chunk:
                raise BrowserError(f"Chromium exited (code {self.proc.poll()}) while we waited for it")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: bool = False, **params: Any) -> dict:
        """Send one command (to the tab with ``session``) and return its result."""
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise BrowserError(f"Chromium refused {method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self.events.append(reply)

    def _wait_for(self, method: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read(deadline))

    def open(
        self,
        url: str,
        width: int,
        height: int,
        scale: float = 1,
        dark: bool = False,
        headers: dict | None = None,
    ) -> None:
        """Load ``url`` in a window of ``width`` x ``height`` CSS pixels (a phone's when narrow)."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=True,
            width=width,
            height=height,
            deviceScaleFactor=scale,
            mobile=width < 600,
        )
        scheme = [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]
        self.call("Emulation.setEmulatedMedia", session=True, features=scheme)
        if headers:
            self.call("Network.enable", session=True)
            self.call("Network.setExtraHTTPHeaders", session=True, headers=headers)
        self.events.clear()
        self.call("Page.navigate", session=True, url=url)
        self._wait_for("Page.loadEventFired")

    def scroll_to_heading(self, text: str) -> None:
        """Scroll the page so that the heading reading ``text`` is at the top of the window."""
        script = (
            "[...document.querySelectorAll('h1, h2, h3')]"
            f".find(h => h.textContent.trim() === {json.dumps(text)}).scrollIntoView()"
        )
        result = self.call("Runtime.evaluate", session=True, expression=script)
        if "exceptionDetails" in result:
            raise BrowserError(f'the page has no heading "{text}" to scroll to')

    def screenshot(self, path: Path, full_page: bool = False) -> None:
        """Save the window (or the whole page) as PNG."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session=True)["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        data = self.call("Page.captureScreenshot", session=True, **params)["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        """End Chromium and close the pipes."""
        try:
            self.call("Browser.close")
        except (BrowserError, OSError):
            pass  # it is going anyway
        for fd in (self._out, self._in):
            os.close(fd)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
