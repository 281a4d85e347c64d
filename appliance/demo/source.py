"""The embedded "sales platform": a SQLite file the demo reads through the real Source.

It creates customers, products, orders with statuses, lookups, JSON, soft deletes and a
test customer, then keeps changing them; the story can cut its link and add a column.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from pathlib import Path

from ..clock import iso, utcnow
from ..errors import SourceError
from ..sync.link import FixedLink
from ..sync.source import Source

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
    return iso(utcnow())


class DemoSource:
    """The embedded sales platform: creates its data, then keeps changing it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.rng = random.Random(7)
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

    @property
    def drifted(self) -> bool:
        """True once the release added orders.coupon (also in a kept demo folder)."""
        return any(row[1] == "coupon" for row in self.db.execute("PRAGMA table_info(orders)"))

    def add_column(self) -> None:
        """A release at the source: orders gain a coupon column (non-breaking drift)."""
        if self.drifted:
            return
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
            raise SourceError("the demo source is down (a simulated outage).")
        return super().source()


def keep_changing(source: DemoSource, stop: threading.Event) -> None:
    """Make a second's worth of business every second until ``stop``."""
    while not stop.wait(1):
        try:
            source.step()
        except sqlite3.Error:  # a busy moment is fine: try again next second
            continue
