"""The demo's story: green, an outage you acknowledge, green, a schema change you accept, green.

Everything is the real thing: the agent syncs the embedded source into a real replica, the
health code judges it, the status page serves it on localhost and the indicator drives mock
pins and a dummy display. The story waits for the newcomer at the outage (Acknowledge) and
at the drift (Accept); ``auto`` does both by itself, as the tests need.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import click

from ..config import Config, load
from ..errors import ApplianceError
from ..health.status import accept_drift, acknowledge, current_status
from ..health.store import StateStore
from ..sync.agent import Agent
from ..sync.replica import Replica
from ..sync.source import Source
from .source import CuttableLink, DemoSource, keep_changing

log = logging.getLogger(__name__)

# When things happen, in seconds after start (the outage and the drift wait for people).
OUTAGE_AT, OUTAGE_FOR = 40, 25
DRIFT_AFTER = 20  # seconds of green after the outage ended
ACCEPT_AFTER = 15  # with auto: seconds of drift before accepting by itself
MARKER = ".appliance-demo"  # a folder holding it is the demo's to empty
TABLES: list[dict[str, object]] = [
    {"name": "public.orders", "cursor": "updated_at", "soft_delete": "deleted_at", "history": ["status"]},
    {"name": "public.customers", "cursor": "updated_at", "where": "NOT is_test"},
    {"name": "public.products", "cursor": "updated_at"},
    {"name": "public.order_statuses"},
]


def fresh_workdir(workdir: str | os.PathLike, keep: bool = False) -> Path:
    """Return the demo folder, emptied unless ``keep``; refuse a folder that is not the demo's."""
    work = Path(workdir).resolve()
    if work.exists() and not keep and any(work.iterdir()):
        if not (work / MARKER).exists() and not (work / "state" / "state.sqlite").exists():
            raise ApplianceError(
                f"{work} holds files that are not the demo's; the demo empties its folder on "
                f"every start. Pick an empty or new folder with --dir."
            )
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    (work / MARKER).write_text("the appliance demo's folder: emptied at every start\n")
    return work


def _toml(value: object) -> str:
    """Return ``value`` as TOML (strings, numbers, booleans and lists are all the demo needs)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string


def write_config(work: Path, port: int, token_file: Path) -> Path:
    """Write the demo's appliance.toml (the same settings table as a real appliance)."""
    sections: dict[str, dict[str, object]] = {
        "appliance": {"state_dir": str(work / "state")},
        "source": {"host": "embedded-demo", "database": "sales", "user": "demo_reader"},
        "sync": {
            "interval": "2s",
            "warn_lag": "20s",
            "max_lag": "60s",
            "lookback": "30s",
            "probe_interval": "1s",
        },
        "web": {"host": "127.0.0.1", "port": port, "api_token_file": str(token_file)},
        "indicator": {"mock": True},  # gpiozero's MockFactory and luma's dummy display
    }
    lines = ["# Written by `appliance demo`: point the CLI at it with --config."]
    for name, keys in sections.items():
        lines += ["", f"[{name}]", *(f"{k} = {_toml(v)}" for k, v in keys.items())]
    for table in TABLES:
        lines += ["", "[[tables]]", *(f"{k} = {_toml(v)}" for k, v in table.items())]
    path = work / "appliance.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _token(work: Path) -> Path:
    path = work / "api.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_urlsafe(18) + "\n")
    return path


@dataclass
class Story:
    """Where the story is, and what it has said; ``advance`` moves it on by what it sees."""

    config: Config
    link: CuttableLink
    source: DemoSource | None
    auto: bool
    say: Callable[[str], None]
    outage: tuple[float, float] = (OUTAGE_AT, OUTAGE_FOR)
    drift_after: float = DRIFT_AFTER
    accept_after: float = ACCEPT_AFTER
    step: str = "green"
    since: float = 0.0
    told: set[str] = field(default_factory=set)

    def _once(self, key: str, text: str) -> None:
        if key not in self.told:
            self.told.add(key)
            self.say(text)

    def _go(self, step: str, now: float) -> None:
        self.step, self.since = step, now

    def advance(self, now: float, doc: dict) -> None:
        """Move the story on at ``now`` (seconds since start) given the current status."""
        cli = f"appliance --config {self.config.path}"
        if self.step == "green" and now >= self.outage[0]:
            self.link.cut.set()
            self.say(">>> The source goes down (a simulated outage): the page turns red within seconds.")
            self._go("outage", now)
        elif self.step == "outage":
            if doc["state"] == "outage" and not doc["acknowledged"]:
                if self.auto:
                    acknowledge(self.config, by="demo")
                else:
                    self._once("ack", f">>> Press Acknowledge on the page (or run: {cli} ack).")
            if doc["acknowledged"] and now - self.since >= self.outage[1]:
                self.link.cut.clear()
                self.say(">>> The source is back: green again within a cycle.")
                self._go("recovered", now)
        elif self.step == "recovered" and self.source is None:
            self._go("over", now)  # a real PostgreSQL: the schema change is not ours to make
        elif self.step == "recovered" and doc["state"] == "ok" and now - self.since >= self.drift_after:
            assert self.source is not None  # the branch above took a real PostgreSQL
            self.source.add_column()
            self.say(">>> A release at the source adds orders.coupon: the page turns amber (drift).")
            self._go("drift", now)
        elif self.step == "drift":
            if doc["state"] == "drift":
                self.told.add("drift seen")
            if "drift seen" not in self.told:
                return  # the agent has not noticed the change yet
            if self.auto:
                if now - self.since >= self.accept_after:
                    accept_drift(self.config, "public.orders", by="demo")
            elif doc["state"] == "drift":
                self._once(
                    "accept",
                    f">>> Open public.orders on the page and press Accept (or run: {cli} schema accept).",
                )
            if doc["state"] == "ok" and not any(t["drift"] for t in doc["tables"]):
                self._go("over", now)
        elif self.step == "over" and doc["state"] == "ok":
            self._once(
                "over",
                ">>> The story is over. The appliance keeps running: try the page, or Ctrl-C to stop.",
            )


def run_demo(
    workdir: str,
    source_url: str | None = None,
    duration: float = 0,
    port: int = 8080,
    *,
    auto: bool = False,
    keep: bool = False,
    outage: tuple[float, float] = (OUTAGE_AT, OUTAGE_FOR),
    drift_after: float = DRIFT_AFTER,
    accept_after: float = ACCEPT_AFTER,
    tick: float = 1.0,
) -> None:
    """Run the source, the agent, the page, the indicator and the story until Ctrl-C or ``duration``."""
    work = fresh_workdir(workdir, keep)
    quiet = logging.getLogger("appliance")
    level = quiet.level
    if not log.isEnabledFor(logging.DEBUG):
        quiet.setLevel(logging.ERROR)  # the story tells what happens
    try:
        _run(work, source_url, duration, port, auto, keep, outage, drift_after, accept_after, tick)
    finally:
        quiet.setLevel(level)  # the demo may run inside a longer process (the tests)


def _run(
    work: Path,
    source_url: str | None,
    duration: float,
    port: int,
    auto: bool,
    keep: bool,
    outage: tuple[float, float],
    drift_after: float,
    accept_after: float,
    tick: float,
) -> None:
    from ..web.server import PageServer

    token_file = work / "api.token" if keep and (work / "api.token").exists() else _token(work)
    config = load(write_config(work, port or 8080, token_file))  # --port 0: rewritten below
    try:
        page = PageServer(config, "127.0.0.1", port).start()
    except (ApplianceError, OSError) as e:
        raise ApplianceError(
            f"the demo's status page cannot listen on 127.0.0.1:{port} ({e}). The demo needs its "
            f"page: pick a free port with --port."
        ) from None
    if page.port != config.web.port:  # --port 0: the system chose one; the config says which
        config = load(write_config(work, page.port, token_file))
    demo_source = None if source_url else DemoSource(work / "source.sqlite")
    url = source_url or f"sqlite:///{work / 'source.sqlite'}"
    link = CuttableLink(Source(url, where="the embedded demo source"))
    store, replica = StateStore(config.state_dir), Replica(config.replica_url)
    agent = Agent(config, link, replica, store)
    stop = threading.Event()
    threads = [
        threading.Thread(target=agent.run, name="agent", daemon=True),
        threading.Thread(target=_indicator, args=(config, work / "oled.png", stop), daemon=True),
    ]
    if demo_source is not None:
        threads.append(threading.Thread(target=keep_changing, args=(demo_source, stop), daemon=True))
    _introduce(config, page.url, token_file, auto)
    story = Story(config, link, demo_source, auto, click.echo, outage, drift_after, accept_after)
    for t in threads:
        t.start()
    started, shown = time.monotonic(), ""
    try:
        while not duration or time.monotonic() - started < duration:
            doc = current_status(config)
            line = f"{doc['state'].upper()}: {doc['reason']}  lights: {lights_text(doc)}"
            if line != shown:  # a line per change, never the same block again
                click.echo(f"[{time.monotonic() - started:4.0f}s] {line}")
                shown = line
            story.advance(time.monotonic() - started, doc)
            if stop.wait(tick):
                break
    except KeyboardInterrupt:
        click.echo("demo: stopping")
    finally:
        stop.set()
        agent.stopping.set()
        page.close()
        threads[0].join(timeout=30)
        for closeable in (replica, store, link, demo_source):
            if closeable is not None:
                closeable.close()


def _introduce(config: Config, url: str, token_file: Path, auto: bool) -> None:
    token = token_file.read_text().strip()
    minutes = (OUTAGE_AT + OUTAGE_FOR + DRIFT_AFTER + ACCEPT_AFTER + 30) // 60 + 1
    waits = (
        " (acknowledging and accepting by itself)" if auto else ", waiting for you at the red and the amber"
    )
    click.echo(
        f"demo: open the status page: {url}\n"
        f"demo: the token the page asks for when you press Acknowledge or Accept: {token}\n"
        f"demo: the CLI works against it too: appliance --config {config.path} status\n"
        f"demo: the story takes about {minutes} minutes{waits}; Ctrl-C stops.\n"
    )


def lights_text(status: dict) -> str:
    """Return what the traffic light shows for this status (the indicator's own mapping)."""
    from ..indicator.leds import DESCRIPTIONS
    from ..indicator.view import pattern_for

    return DESCRIPTIONS[pattern_for(status)]


def _indicator(config: Config, preview: Path, stop: threading.Event) -> None:
    """The real indicator loop on mock pins and a dummy display, writing the OLED picture."""
    from ..indicator.loop import serve

    try:
        serve(
            config,
            lambda: current_status(config),
            lambda: acknowledge(config, by="button"),
            preview=preview,
            interval=1.0,
            stop=stop.is_set,
            lamp_test=0.2,
            warn=lambda text: log.warning("%s", text),
        )
    except Exception as e:  # the demo goes on without its lights, and says so
        click.echo(f"demo: the indicator could not start: {e}")
