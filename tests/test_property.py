"""Property: random workloads against the real PostgreSQL, synced through the real tunnel.

Inserts (several per statement, so cursor ties), updates, updates that forget the cursor,
soft and hard deletes, rows becoming test data, and transactions opened, left open
across syncs and committed late. After every sync the replica holds every committed row
the filter keeps, exactly (rows changed behind the cursor's back excepted); after every
reconciliation it equals the filtered source row for row.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.harness import Harness
from support.tomlconf import password_file, sections, write_config

from appliance.sync.extras import DELETED

ISO = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''
COLUMNS = ["id", "part", "status", "amount", "is_test", "deleted_at", "updated_at"]
SOURCE = (
    f"SELECT id, part, status, amount::text, is_test::int, to_char(deleted_at AT TIME "
    f"ZONE 'UTC', {ISO}), to_char(updated_at AT TIME ZONE 'UTC', {ISO}) FROM items"
)
STATUSES = ["new", "paid", "it's", "shipped"]

step = st.one_of(
    st.tuples(st.just("insert"), st.integers(1, 4), st.booleans()),
    st.tuples(
        st.sampled_from(
            [
                "update",
                "silent",
                "soft_delete",
                "restore",
                "hard_delete",
                "flag_test",
                "unflag_test",
                "late_update",
            ]
        ),
        st.integers(0, 10_000),
    ),
    st.tuples(st.sampled_from(["late_insert", "late_commit"])),
)
# A round: some changes at the source, then a sync, then maybe a reconciliation.
rounds = st.lists(st.tuples(st.lists(step, min_size=1, max_size=5), st.booleans()), min_size=2, max_size=7)
variant = st.fixed_dictionaries(
    {
        "soft_delete_action": st.sampled_from(["keep", "drop"]),
        "hard_delete_action": st.sampled_from(["delete", "tombstone"]),
        "composite": st.booleans(),
        "batch_size": st.integers(2, 6),
    }
)


class World:
    """The source table, its open late transactions, and what the replica may lag behind."""

    def __init__(self, pg, variant: dict) -> None:
        self.pg, self.v = pg, variant
        key = "part, id" if variant["composite"] else "id"
        pg.sql(
            f"""DROP TABLE IF EXISTS items; CREATE TABLE items (id int, part text NOT NULL,
                   status text, amount numeric(8,2), is_test boolean NOT NULL DEFAULT false,
                   deleted_at timestamptz, updated_at timestamptz NOT NULL DEFAULT now(),
                   PRIMARY KEY ({key}))""",
            db="sales",
        )
        self.conn = pg.connect("sales")
        self.next_id, self.late, self.locked = 1, [], set()
        self.silent, self.deleted = set(), set()  # changed behind the cursor / hard-deleted

    def ids(self) -> list[int]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id FROM items ORDER BY id")
            return [r[0] for r in cur.fetchall() if r[0] not in self.locked]

    def insert(self, cur, n: int, test: bool) -> None:
        rows = [
            (i, f"p{i % 3}", STATUSES[i % 4], i * 1.25, test and i % 2 == 0)
            for i in range(self.next_id, self.next_id + n)
        ]
        self.next_id += n
        cur.executemany(
            "INSERT INTO items (id, part, status, amount, is_test) VALUES (%s, %s, %s, %s, %s)", rows
        )

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "insert":
            with self.conn.cursor() as cur:
                self.insert(cur, op[1], op[2])
        elif kind in ("late_insert", "late_update"):
            self.begin_late(kind, op)
        elif kind == "late_commit" and self.late:
            conn, ids = self.late.pop(0)
            conn.commit()  # its rows carry now() of when it began: older than the cursor
            conn.close()
            self.locked -= ids
        elif len(op) == 2 and self.ids():
            self.change(kind, self.ids()[op[1] % len(self.ids())])

    def change(self, kind: str, id_: int) -> None:
        sql = {
            "update": "status = 'upd', amount = amount + 1, updated_at = now()",
            "silent": "amount = amount + 100",  # a script that forgot updated_at
            "soft_delete": "deleted_at = now(), updated_at = now()",
            "restore": "deleted_at = NULL, updated_at = now()",
            "flag_test": "is_test = true, updated_at = now()",
            "unflag_test": "is_test = false, updated_at = now()",
        }.get(kind)
        with self.conn.cursor() as cur:
            if kind == "hard_delete":
                cur.execute("DELETE FROM items WHERE id = %s", (id_,))
                self.deleted.add(id_)
            elif sql:
                cur.execute(f"UPDATE items SET {sql} WHERE id = %s", (id_,))
                if kind == "silent":
                    self.silent.add(id_)

    def begin_late(self, kind: str, op: tuple) -> None:
        if len(self.late) >= 2:
            return
        ids = self.ids()
        conn = self.pg.connect("sales")
        conn.autocommit = False
        cur = conn.cursor()
        cur.execute("SELECT now()")  # the transaction's clock starts here
        touched = set()
        if kind == "late_insert":
            self.insert(cur, 2, False)
            touched = {self.next_id - 2, self.next_id - 1}
        elif ids:
            id_ = ids[op[1] % len(ids)]
            cur.execute("UPDATE items SET status = 'late', updated_at = now() WHERE id = %s", (id_,))
            touched = {id_}
        self.late.append((conn, touched))
        self.locked |= touched

    def expected(self) -> dict:
        keep = "NOT is_test" + (" AND deleted_at IS NULL" if self.v["soft_delete_action"] == "drop" else "")
        with self.conn.cursor() as cur:
            cur.execute(f"{SOURCE} WHERE {keep}")
            return {r[0]: tuple(r) for r in cur.fetchall()}

    def close(self) -> None:
        for conn, _ in self.late:
            conn.rollback()
            conn.close()
        self.conn.close()


def replica(h: Harness) -> tuple[dict, set]:
    """Return the replica's live rows by id, and the ids of tombstoned rows."""
    rows = h.rows("items", "id")
    live = {r["id"]: tuple(r[c] for c in COLUMNS) for r in rows if not r.get(DELETED)}
    return live, {r["id"] for r in rows if r.get(DELETED)}


def config(pg, sshd, work: Path, v: dict) -> Path:
    pw = password_file(work / "pw")
    os.chmod(sshd.client_key, 0o600)
    return write_config(
        work / "appliance.toml",
        sections(work / "state", pg, pw, sshd, sync={"batch_size": v["batch_size"], "lookback": "10m"}),
        [
            {
                "name": "public.items",
                "cursor": "updated_at",
                "where": "NOT is_test",
                "soft_delete": "deleted_at",
                "soft_delete_action": v["soft_delete_action"],
                "hard_delete_action": v["hard_delete_action"],
            }
        ],
    )


def check_after_sync(h: Harness, world: World) -> None:
    live, _ = replica(h)
    expected = world.expected()
    for id_, row in expected.items():
        if id_ not in world.silent:
            assert live.get(id_) == row, f"row {id_} after sync"
    extra = set(live) - set(expected)
    assert extra <= world.deleted, f"rows the source does not have: {sorted(extra - world.deleted)}"


def check_after_reconcile(h: Harness, world: World) -> None:
    live, tombstoned = replica(h)
    assert live == world.expected()
    assert tombstoned <= world.deleted
    world.silent.clear()


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
    ],
)
@given(variant=variant, rounds=rounds)
def test_property_replica_equals_filtered_source(pg, sshd, sales, variant, rounds):
    world = World(pg, variant)
    with tempfile.TemporaryDirectory() as tmp, Harness(config(pg, sshd, Path(tmp), variant)) as h:
        try:
            world.apply(("insert", 12, True))
            h.sync()
            last = [([("late_commit",), ("late_commit",)], True)]
            for ops, reconcile in [*rounds, *last]:
                for op in ops:
                    world.apply(op)
                h.sync()
                check_after_sync(h, world)
                if reconcile:
                    h.reconcile(factor=3, threshold=3, first=3)
                    check_after_reconcile(h, world)
        finally:
            world.close()
