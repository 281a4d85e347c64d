"""``scripts/demo --pictures [DIR]``: the README's pictures, made by the project's own code.

Nothing is drawn or edited by hand. The embedded demo source changes, the agent's own
pass (``run_once``) syncs it, and the health code judges it: each state is what a real
appliance would show, brought about the way it happens on site (the link cut, a column
dropped at the source, a maintenance window started). The status page is a real
``appliance web`` process on a socket, photographed by headless Chromium at a desktop's
and a phone's width; the OLED frames come from the indicator's own pass on luma's dummy
display, enlarged 4x pixel for pixel; the wiring diagram is drawn from ``[indicator]``.

The thresholds are short (``warn_lag`` 3 s) so the whole run takes well under a minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click
from PIL import Image

from ..clock import utcnow
from ..config import Config, load
from ..errors import ApplianceError
from ..health import maintenance
from ..health import status as health
from ..health.store import StateStore
from ..indicator.address import Address, page_address
from ..sync.agent import Agent, run_once
from ..sync.replica import Replica
from ..sync.source import Source
from .browser import Chromium, find
from .oled import OLED_FRAMES, oled_pictures
from .source import CuttableLink, DemoSource
from .story import TABLES
from .wiring import default_indicator, wiring_svg

FOLDER = Path(__file__).parent / "pictures"  # committed; the README shows them from here
STATES = ("ok", "lagging", "outage", "recovered", "drift", "maintenance")
SCREENS = {"desktop": (1280, 900, 1), "phone": (390, 844, 2)}  # CSS width, height, pixel ratio
PICTURES = sorted(
    [f"page-{state}-{screen}.png" for state in STATES for screen in SCREENS]
    + [f"page-drift-table-{screen}.png" for screen in SCREENS]
    + ["page-data-phone.png", "wiring.svg"]
    + [f"oled-{name}.png" for name in OLED_FRAMES]
)
SETTINGS: dict[str, dict[str, object]] = {
    "sync": {"interval": "1s", "probe_interval": "1s", "warn_lag": "3s", "max_lag": "1h", "lookback": "30s"},
    "indicator": {"mock": True},  # gpiozero's MockFactory and luma's dummy display
}
WAIT = 30.0  # seconds a state may take to show before the run gives up


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # a JSON string or number is TOML too


def write_config(work: Path, token_file: Path) -> Path:
    """Write the pictures' appliance.toml: the demo's tables, short thresholds, the page on loopback."""
    sections: dict[str, dict[str, object]] = {
        "appliance": {"state_dir": str(work / "state")},
        # Not "demo": the page leaves the role's name out of every text, and "demo" is a word.
        "source": {"host": "embedded-demo", "database": "sales", "user": "analytics_ro"},
        "web": {"host": "127.0.0.1", "port": 8080, "api_token_file": str(token_file)},
        **SETTINGS,
    }
    lines = []
    for name, keys in sections.items():
        lines += [f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in keys.items()), ""]
    for table in TABLES:
        lines += ["[[tables]]", *(f"{k} = {_toml(v)}" for k, v in table.items()), ""]
    path = work / "appliance.toml"
    path.write_text("\n".join(lines))
    return path


class WebProcess:
    """A real ``appliance web`` process on 127.0.0.1, on a port the system picks."""

    def __init__(self, config_path: Path, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "appliance.cli", "--config", str(config_path), "web", "--port", "0"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            found = _until(lambda: re.search(r"Status page: (http://\S+/)", self._output()), "status page")
        except ApplianceError:
            self.close()
            raise
        self.url = found.group(1)
        self.port = int(self.url.rstrip("/").rpartition(":")[2])

    def _output(self) -> str:
        text = self.log.read_text()
        if self.proc.poll() is not None:
            raise ApplianceError(
                f"appliance web stopped at once (exit {self.proc.returncode}): {text[-500:]}"
            )
        return text

    def shows(self, path: str, *needles: str) -> bool:
        """Return whether the page at ``path`` holds every one of ``needles`` now."""
        try:
            with _DIRECT.open(self.url + path, timeout=10) as response:
                body = response.read().decode()
        except OSError as e:
            raise ApplianceError(
                f"the status page at {self.url} stopped answering ({e}); see {self.log}"
            ) from None
        return all(n in body for n in needles)

    def close(self) -> None:
        self.proc.terminate()  # SIGTERM: the page's own clean stop
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# Loopback never goes through a proxy, whatever http_proxy says.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _until(predicate: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Return the first truthy ``predicate()``; raise when none comes within ``timeout``."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise ApplianceError(f"the pictures stopped: no {what} within {timeout:.0f}s")
        time.sleep(0.1)
    return value


class Stack:
    """The demo source, the agent's pass, the state store and the page, driven step by step."""

    def __init__(self, work: Path) -> None:
        token = work / "api.token"
        fd = os.open(token, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("pictures-" + os.urandom(12).hex() + "\n")
        self.token = token.read_text().strip()
        # environ={}: the run is the same whoever starts it (no systemd socket, no pin factory).
        self.config: Config = load(write_config(work, token), environ={})
        self.source = DemoSource(work / "source.sqlite")
        self.link = CuttableLink(
            Source(f"sqlite:///{work / 'source.sqlite'}", where="the embedded demo source")
        )
        self.store, self.replica = StateStore(self.config.state_dir), Replica(self.config.replica_url)
        self.agent = Agent(self.config, self.link, self.replica, self.store)
        try:
            self.page = WebProcess(Path(self.config.path), work / "web.log")
        except ApplianceError:
            self._close_parts()
            raise
        # What the OLED shows at the bottom: where the page really listens.
        self.address: Address = page_address(replace(self.config.web, port=self.page.port))

    def sync(self) -> None:
        """Make a second's worth of business at the source, then run one pass of the agent."""
        self.source.step()
        run_once(self.config, self.link, self.replica, self.store, self.agent.heartbeat)
        self.agent.heartbeat(force=True)

    def lag(self) -> float:
        """Return the largest lag of a table now (the agent keeps its heartbeat meanwhile)."""
        self.agent.heartbeat()
        tables = health.current_status(self.config)["tables"]
        return max(t["lag_seconds"] or 0.0 for t in tables)

    def close(self) -> None:
        self.page.close()
        self._close_parts()

    def _close_parts(self) -> None:
        for part in (self.replica, self.store, self.link, self.source):
            part.close()


def _banner(state: str) -> str:
    return f'class="banner s-{state}"'


@dataclass(frozen=True)
class Stage:
    """One picture of the page: how its state comes about and what proves the page shows it."""

    name: str
    bring_about: Callable[[], None]
    needles: tuple[str, ...]  # the page must hold all of these before the picture is taken
    path: str = ""  # under the page's URL
    heading: str = ""  # a phone shows its first screenful from this heading on


def _stages(stack: Stack) -> list[Stage]:
    """Return the pictures of the page in order: each state follows from the one before."""
    s = stack

    def lagging() -> None:  # the agent runs but no pass finishes (a long copy): lag grows
        # Twice warn_lag: "6s behind (more than warn_lag 3s)" reads as a lag, not a rounding.
        _until(lambda: s.lag() >= 2 * s.config.sync.warn_lag, "lagging state")

    def outage() -> None:
        s.link.cut.set()  # the tunnel or the database goes away
        s.sync()

    def recovered() -> None:
        s.link.cut.clear()
        s.sync()

    def drift() -> None:  # a release at the source drops a column: breaking, the table freezes
        s.source.db.execute("ALTER TABLE products DROP COLUMN price")
        s.sync()

    def planned() -> None:
        health.accept_drift(s.config, "public.products", by="the pictures")
        s.sync()  # the accepted table is copied again
        maintenance.start_now(
            s.config, s.store, 3600, "Database upgrade to PostgreSQL 17", utcnow(), by="the pictures"
        )
        s.link.cut.set()  # the source goes down as planned
        s.sync()

    return [
        Stage("ok", s.sync, (_banner("ok"),)),
        Stage("lagging", lagging, (_banner("lagging"),)),
        Stage("outage", outage, (_banner("outage"), "Acknowledge")),
        Stage("recovered", recovered, (_banner("ok"), 'class="recovered"')),
        Stage("drift", drift, (_banner("drift"),)),
        Stage(
            "drift-table",
            lambda: None,
            ("Accept these changes",),
            path="tables/public.products",
            heading="Schema changes",  # the change and the Accept button, not the settings
        ),
        Stage("maintenance", planned, (_banner("maintenance"),)),
    ]


def make_pictures(folder: Path, say: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Make every picture of ``PICTURES`` in ``folder``; return their paths."""
    chromium = find()  # before anything starts: without it there is nothing to photograph with
    folder.mkdir(parents=True, exist_ok=True)
    made = [folder / "wiring.svg"]
    made[0].write_text(wiring_svg(default_indicator()))
    with tempfile.TemporaryDirectory(prefix="appliance-pictures-") as tmp:
        work = Path(tmp)
        (work / "profile").mkdir()
        stack = Stack(work)
        try:
            with Chromium(chromium, work / "profile") as browser:
                made += _photograph(stack, browser, folder, say)
        finally:
            stack.close()
    return made


def _photograph(stack: Stack, browser: Chromium, folder: Path, say: Callable[[str], None]) -> list[Path]:
    """Bring about each state, photograph the page in it, then draw the OLED frames."""
    made, statuses = [], {}
    for stage in _stages(stack):
        stage.bring_about()
        _until(lambda: stack.page.shows(stage.path, *stage.needles), f"{stage.name} on the page")  # noqa: B023
        status = health.current_status(stack.config)
        statuses[stage.name] = status
        for screen in SCREENS:
            if stage.name in ("ok", "recovered"):
                stack.sync()  # fresh: its lag stays under warn_lag while the picture is taken
            path = folder / f"page-{stage.name}-{screen}.png"
            made.append(_page(browser, stack.page.url + stage.path, screen, path, heading=stage.heading))
        say(f"pictures: {stage.name}: {status['reason']}")
    bearer = {"Authorization": f"Bearer {stack.token}"}  # the table browser wants the token
    made.append(
        _page(browser, stack.page.url + "data/orders", "phone", folder / "page-data-phone.png", bearer)
    )
    return made + oled_pictures(statuses, stack.address, stack.config.indicator, folder)


def _page(
    browser: Chromium, url: str, screen: str, path: Path, headers: dict | None = None, heading: str = ""
) -> Path:
    """Save ``url`` as the screen sees it: a desktop's whole page, a phone's screenful (from
    ``heading`` when given)."""
    width, height, scale = SCREENS[screen]
    browser.open(url, width, height, scale, headers=headers)
    desktop = screen == "desktop"
    if heading and not desktop:
        browser.scroll_to_heading(heading)
    browser.screenshot(path, full_page=desktop)
    # 256 colours: the page is flat colours and text, and the README's pictures stay small.
    with Image.open(path) as shot:
        small = shot.convert("RGB").quantize(256, method=Image.Quantize.FASTOCTREE)
    small.save(path, format="PNG", optimize=True)
    return path


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=FOLDER, required=False)
def main(folder: Path) -> None:
    """Make the README's pictures in FOLDER (default: appliance/demo/pictures)."""
    click.echo(f"pictures: the page in each state, the OLED frames and the wiring, into {folder}")
    try:
        made = make_pictures(folder, click.echo)
    except ApplianceError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"pictures: {len(made)} written to {folder}; look at them before committing.")


if __name__ == "__main__":  # pragma: no cover
    main()
