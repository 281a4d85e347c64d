"""Headless Chromium for the page's tests: the demo's DevTools client plus what tests read.

``appliance.demo.browser.Chromium`` (the README pictures' browser, over Chromium's DevTools
pipe) opens pages at a size and takes screenshots; here it also reads the DOM, tells
whether a page scrolls sideways, and collects every console error, uncaught exception and
failed load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from appliance.demo.browser import BrowserError, Chromium
from appliance.demo.browser import find as find_binary


def find() -> str | None:
    """Return the Chromium binary, or None when it is not installed."""
    try:
        return find_binary()
    except BrowserError:
        return None


class Browser(Chromium):
    """A headless Chromium with one page; ``close()`` ends the process."""

    def __init__(self, binary: str, profile: Path, timeout: float = 30.0) -> None:
        super().__init__(binary, profile, timeout)
        for domain in ("Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")

    def call(self, method: str, session: bool | None = None, **params: Any) -> dict:
        """Send one command; a page's command goes to the tab unless ``session`` says otherwise."""
        if session is None:
            session = hasattr(self, "session") and not method.startswith(("Target.", "Browser."))
        return super().call(method, session=session, **params)

    def text(self, selector: str) -> str:
        """Return the visible text of the first element matching ``selector``."""
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).innerText")

    def evaluate(self, expression: str) -> Any:
        """Return the value of a JavaScript expression in the page."""
        return self.call("Runtime.evaluate", returnByValue=True, expression=expression)["result"]["value"]

    def width_overflows(self) -> bool:
        """Return True when the page is wider than the window (sideways scrolling)."""
        return self.evaluate("document.documentElement.scrollWidth > window.innerWidth")

    def screenshot(self, path: Path, full_page: bool = True) -> None:
        """Save the whole page (not only the window) as PNG."""
        super().screenshot(path, full_page=full_page)

    def errors(self) -> list[str]:
        """Return console errors, uncaught exceptions and failed loads since ``open``."""
        out = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                out.append(f"uncaught: {params['exceptionDetails'].get('text')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(f"console: {params.get('args')}")
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                out.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")
            elif method == "Network.loadingFailed":
                out.append(f"load failed: {params.get('errorText')}")
            elif method == "Network.responseReceived" and params["response"]["status"] >= 400:
                out.append(f"HTTP {params['response']['status']}: {params['response']['url']}")
        return out
