"""``appliance demo``: the whole story on one machine with nothing but the package.

An embedded "sales platform" (a SQLite file read through the same Source interface as
PostgreSQL) keeps changing while the real agent syncs it into a real replica and the
real health code judges it. On a timeline the source goes down for a while and comes
back, so a newcomer sees green, red, green. ``--source URL`` uses a real PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import random
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import click

from .config import Config, parse
from .errors import ApplianceError, SourceError
from .health.status import accept_drift, acknowledge, current_status
from .health.store import StateStore
from .health.text import render
from .sync.agent import Agent
from .sync.link import FixedLink
from .sync.replica import Replica
from .sync.source import Source

log = logging.getLogger(__name__)

# The timeline, in seconds after start: an outage, then a schema change that is accepted.
OUTAGE_AT, OUTAGE_FOR = 40, 25
DRIFT_AT, ACCEPT_AT = 90, 120

SCHEMA = """
CREATE TABLE order_statuses (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT, is_test BOOLEAN,
    created_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, price DECIMAL TEXT,
    updated_at TIMESTAMPTZ NOT NULL);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, status TEXT,
    total DECIMAL TEXT, details JSON, deleted_at TIMESTAMPTZ, updated_at TIMESTAMPTZ NOT NULL);
"""

STATUSES = [("new", "New"), ("paid", "Paid"), ("shipped", "Shipped"), ("cancelled", "Cancelled")]
NAMES = ["Ada", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger"]
PRODUCTS = [
    ("Espresso beans 1kg", "24.90"),
    ("Grinder", "129.00"),
    ("Filter papers", "3.50"),
    ("Milk jug", "15.75"),
    ("Scale", "39.99"),
]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class DemoSource:
    """The embedded sales platform: creates its data, then keeps changing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.rng = random.Random(7)
        self.drifted = False  # the timeline's schema change happened
        self.accepted = False  # and the data team accepted it
        if fresh:
            self._seed()

    def _seed(self) -> None:
        db, t = self.db, now_iso()
        db.executescript(SCHEMA)
        db.executemany("INSERT INTO order_statuses VALUES (?, ?)", STATUSES)
        for i, name in enumerate(NAMES, 1):
            db.execute(
                "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
                (i, name, f"{name.lower()}@example.com", 0, t, t),
            )
        db.execute("INSERT INTO customers VALUES (99, 'Test Customer', 'qa@example.com', 1, ?, ?)", (t, t))
        for i, (name, price) in enumerate(PRODUCTS, 1):
            db.execute("INSERT INTO products VALUES (?, ?, ?, ?)", (i, name, price, t))
        for _ in range(40):
            self.new_order()

    def new_order(self) -> None:
        rng = self.rng
        items = [
            {"product": rng.randint(1, len(PRODUCTS)), "qty": rng.randint(1, 3)}
            for _ in range(rng.randint(1, 3))
        ]
        total = sum(float(PRODUCTS[i["product"] - 1][1]) * i["qty"] for i in items)
        t = now_iso()
        self.db.execute(
            "INSERT INTO orders (customer_id, status, total, details, updated_at) VALUES (?, 'new', ?, ?, ?)",
            (
                rng.choice([*range(1, len(NAMES) + 1), 99]),
                f"{total:.2f}",
                json.dumps({"items": items, "channel": rng.choice(["web", "shop"])}),
                t,
            ),
        )

    def step(self) -> None:
        """Make one second's worth of business: new orders, status changes, a soft delete."""
        rng, t = self.rng, now_iso()
        for _ in range(rng.randint(1, 3)):
            self.new_order()
        ids = [r[0] for r in self.db.execute("SELECT id FROM orders WHERE deleted_at IS NULL")]
        for oid in rng.sample(ids, min(3, len(ids))):
            status = rng.choice(["paid", "shipped", "cancelled"])
            self.db.execute("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?", (status, t, oid))
        if rng.random() < 0.2 and ids:
            self.db.execute(
                "UPDATE orders SET deleted_at = ?, updated_at = ? WHERE id = ?", (t, t, rng.choice(ids))
            )

    def add_column(self) -> None:
        """A release at the source: orders gain a coupon column (non-breaking drift)."""
        self.db.execute("ALTER TABLE orders ADD COLUMN coupon TEXT")
        self.db.execute(
            "UPDATE orders SET coupon = 'WELCOME10', updated_at = ? WHERE id % 7 = 0", (now_iso(),)
        )

    def close(self) -> None:
        self.db.close()


class CuttableLink(FixedLink):
    """The demo's link to its embedded source, which the timeline can take down."""

    def __init__(self, source: Source) -> None:
        super().__init__(source)
        self.cut = threading.Event()

    def source(self) -> Source:
        if self.cut.is_set():
            self.database_state = "down"
            raise SourceError(
                "the demo source is down for maintenance (simulated outage); it comes back by itself."
            )
        return super().source()


def demo_config(workdir: Path, source_url: str | None) -> Config:
    """Return the demo's configuration (the same settings table as a real appliance)."""
    tables = [
        {"name": "public.orders", "cursor": "updated_at", "soft_delete": "deleted_at", "history": ["status"]},
        {"name": "public.customers", "cursor": "updated_at", "where": "NOT is_test"},
        {"name": "public.products", "cursor": "updated_at"},
        {"name": "public.order_statuses"},
    ]
    return parse(
        {
            "appliance": {"state_dir": str(workdir / "state")},
            "source": {"host": "embedded-demo", "database": "sales", "user": "demo"},
            "sync": {
                "interval": "2s",
                "warn_lag": "20s",
                "max_lag": "60s",
                "lookback": "30s",
                "probe_interval": "1s",
            },
            "indicator": {"mock": True},  # gpiozero's MockFactory and luma's dummy display
            "tables": tables,
        },
        path=f"{workdir}/ (built in)",
    )


def run_demo(
    workdir: str,
    source_url: str | None = None,
    duration: float = 0,
    port: int = 8080,
    outage: tuple[float, float] = (OUTAGE_AT, OUTAGE_FOR),
    drift: tuple[float, float] = (DRIFT_AT, ACCEPT_AT),
    tick: float = 3.0,
) -> None:
    """Run source writer, agent and status printer until Ctrl-C or ``duration``."""
    work = Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if not log.isEnabledFor(logging.DEBUG):
        logging.getLogger("appliance").setLevel(logging.WARNING)  # the status lines tell the story
    config = demo_config(work, source_url)
    demo_source = None if source_url else DemoSource(work / "source.sqlite")
    url = source_url or f"sqlite:///{work / 'source.sqlite'}"
    link = CuttableLink(Source(url, where="the embedded demo source"))
    store, replica = StateStore(config.state_dir), Replica(config.replica_url)
    agent = Agent(config, link, replica, store)
    stop = threading.Event()
    preview = work / "oled.png"
    threads = [
        threading.Thread(target=agent.run, name="agent", daemon=True),
        threading.Thread(target=_indicator, args=(config, preview, stop), daemon=True),
    ]
    if demo_source is not None:
        threads.append(threading.Thread(target=_business, args=(demo_source, stop), daemon=True))
    click.echo(
        f"demo: source {url}\ndemo: replica {config.replica_url}\n"
        f"demo: the OLED picture is kept in {preview}\n"
        f"demo: a simulated outage starts at {outage[0]:.0f}s and lasts {outage[1]:.0f}s; "
        f"a schema change comes at {drift[0]:.0f}s and is accepted at {drift[1]:.0f}s; "
        f"Ctrl-C stops.\n"
    )
    for t in threads:
        t.start()
    page = _page(config, port)
    started = time.monotonic()
    try:
        while not duration or time.monotonic() - started < duration:
            elapsed = time.monotonic() - started
            _timeline(link, elapsed, outage)
            if demo_source is not None:
                _drift_timeline(config, demo_source, elapsed, drift)
            doc = current_status(config)
            click.echo(
                f"[{elapsed:5.0f}s] lights: {lights_text(doc)}\n        "
                + render(doc).replace("\n", "\n        ")
                + "\n"
            )
            if stop.wait(tick):
                break
    except KeyboardInterrupt:
        click.echo("demo: stopping")
    finally:
        stop.set()
        agent.stopping.set()
        if page is not None:
            page.close()
        threads[0].join(timeout=30)
        for closeable in (replica, store, link, demo_source):
            if closeable is not None:
                closeable.close()


def _timeline(link: CuttableLink, elapsed: float, outage: tuple[float, float]) -> None:
    in_outage = outage[0] <= elapsed < outage[0] + outage[1]
    if in_outage and not link.cut.is_set():
        click.echo(">>> timeline: the source goes down (simulated outage)")
        link.cut.set()
    elif not in_outage and link.cut.is_set():
        click.echo(">>> timeline: the source is back")
        link.cut.clear()


def lights_text(status: dict) -> str:
    """Return what the traffic light shows for this status (the indicator's own mapping)."""
    from .indicator.leds import DESCRIPTIONS
    from .indicator.view import pattern_for

    return DESCRIPTIONS[pattern_for(status)]


def _drift_timeline(config: Config, source: DemoSource, elapsed: float, drift: tuple[float, float]) -> None:
    if elapsed >= drift[0] and not source.drifted:
        click.echo(">>> timeline: a release at the source adds orders.coupon (schema drift)")
        source.add_column()
        source.drifted = True
    if (
        elapsed >= drift[1]
        and source.drifted
        and not source.accepted
        and accept_drift(config, "public.orders", by="demo")
    ):
        click.echo(">>> timeline: the data team accepts the change (appliance schema accept)")
        source.accepted = True


def _page(config: Config, port: int):
    """Start the real status page on localhost; the demo goes on without it if the port is taken."""
    from .web.server import PageServer

    try:
        server = PageServer(config, "127.0.0.1", port).start()
    except (ApplianceError, OSError) as e:
        click.echo(f"demo: the status page could not start ({e}); use --port to pick another")
        return None
    click.echo(f"demo: status page at {server.url}  (JSON: {server.url.rstrip('/')}/api/status)\n")
    return server


def _indicator(config: Config, preview: Path, stop: threading.Event) -> None:
    """The real indicator loop on mock pins and a dummy display, writing the OLED picture."""
    from .indicator.loop import serve

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
    except Exception as e:  # noqa: BLE001 - the demo goes on without its lights
        click.echo(f"demo: the indicator could not start: {e}")


def _business(source: DemoSource, stop: threading.Event) -> None:
    while not stop.wait(1):
        try:
            source.step()
        except sqlite3.Error as e:  # a busy moment is fine: try again next second
            log.debug("demo writer: %s", e)
