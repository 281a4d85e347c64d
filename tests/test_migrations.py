"""State store migrations: every earlier schema, with its data, brought to now; newer refused."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.install_stores import EVENTS, SYNCED_AT, old_store

from appliance.cli import main
from appliance.config import load
from appliance.errors import StateError
from appliance.health import migrations
from appliance.health.status import build
from appliance.health.store import StateStore

REPO = Path(__file__).resolve().parents[1]


def columns(path: Path) -> dict[str, list[tuple]]:
    """Every table of a SQLite file with its columns (name, type, not null, default, key)."""
    db = sqlite3.connect(path)
    try:
        names = [
            r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {n: [tuple(c[1:]) for c in db.execute(f"PRAGMA table_info({n})")] for n in names}
    finally:
        db.close()


def dump(path: Path) -> tuple[int, list[str]]:
    """The schema version and every statement that rebuilds the file's content."""
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA user_version").fetchone()[0], list(db.iterdump())
    finally:
        db.close()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "appliance.toml"
    path.write_text(
        f'[appliance]\nstate_dir = "{tmp_path}/state"\n\n'
        '[source]\nhost = "db"\ndatabase = "sales"\nuser = "ro"\npassword_env = "PW"\n\n'
        '[[tables]]\nname = "public.orders"\n'
    )
    return path


@pytest.fixture
def now_schema(tmp_path_factory) -> dict:
    """The tables of a store this code makes from nothing."""
    fresh = tmp_path_factory.mktemp("fresh")
    StateStore(fresh).close()
    return columns(fresh / "state.sqlite")


@pytest.mark.parametrize("version", [1, 2])
def test_migrations_bring_every_earlier_store_to_now_with_its_data(tmp_path, config, now_schema, version):
    path = old_store(tmp_path / "state", version)
    assert ("outbox" in columns(path)) == (version >= 2)
    with StateStore(tmp_path / "state") as store:
        assert migrations.schema_version(store.db) == migrations.latest()
        steps = migrations.applied(store.db)
        events = store.events()
        tables = store.tables()
        runs = store.runs()
        ack = store.get("ack")
        store.enqueue("webhook", {"text": "queued by this version"})
        outbox = [item["payload"]["text"] for item in store.outbox()]
        doc = build(load(str(config)), store)
    assert [(v, name) for v, name, _ in steps] == [(m.version, m.name) for m in migrations.MIGRATIONS]
    assert columns(path) == now_schema
    assert [e["message"] for e in reversed(events)] == [message for *_, message in EVENTS]
    assert tables["public.orders"]["rows"] == 1200 and tables["public.orders"]["last_sync"] == SYNCED_AT
    assert runs[0]["summary"] == "pass ok: 1 tables, 1200 rows"
    assert ack == {"state": "outage", "since": "2026-11-23T14:00:00Z"}
    earlier = ["OUTAGE: tunnel down"] if version >= 2 else []
    assert outbox == [*earlier, "queued by this version"]
    # The readers make sense of it: the table synced long ago, the agent is not running.
    assert doc["state"] == "outage" and doc["agent"]["running"] is False
    assert doc["tables"][0]["rows"] == 1200


def test_migrations_run_once_and_are_recorded(tmp_path):
    old_store(tmp_path, 1)
    with StateStore(tmp_path) as store:
        first = migrations.applied(store.db)
    with StateStore(tmp_path) as store:
        assert migrations.applied(store.db) == first
        assert migrations.migrate(store.db, store.path) == []
    assert len(first) == len(migrations.MIGRATIONS) and all(when.endswith("Z") for *_, when in first)


def test_migrations_readers_only_look(tmp_path):
    """The page and `status` open the store read-only: they never migrate it."""
    path = old_store(tmp_path, 1)
    before = path.read_bytes()
    with StateStore(tmp_path, readonly=True) as store:
        assert store.events()[0]["message"] == EVENTS[-1][-1]
        assert migrations.schema_version(store.db) == 0
    assert path.read_bytes() == before and "outbox" not in columns(path)


def test_migrations_open_at_once_in_several_processes(tmp_path):
    """The agent, the page and a command may open an old store together: one migrates it."""
    old_store(tmp_path, 1)
    code = f"from appliance.health.store import StateStore; StateStore({str(tmp_path)!r}).close()"
    procs = [subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE) for _ in range(4)]
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, errors
    with StateStore(tmp_path, readonly=True) as store:
        assert len(migrations.applied(store.db)) == len(migrations.MIGRATIONS)


def _newer(tmp_path: Path) -> Path:
    StateStore(tmp_path / "state").close()
    path = tmp_path / "state" / "state.sqlite"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {migrations.latest() + 1}")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize("readonly", [False, True])
def test_migrations_refuse_a_store_newer_than_the_code(tmp_path, readonly):
    """After going back to an older release without its copy of the store: a clear refusal."""
    path = _newer(tmp_path)
    before = dump(path)
    with pytest.raises(StateError) as refused:
        StateStore(tmp_path / "state", readonly=readonly)
    message = str(refused.value)
    assert (
        f"schema version {migrations.latest() + 1}" in message and f"up to {migrations.latest()}" in message
    )
    assert "--rollback" in message and "move" in message
    assert dump(path) == before


def test_migrations_newer_store_in_the_commands(tmp_path, config):
    _newer(tmp_path)
    status = CliRunner().invoke(main, ["--config", str(config), "status"])
    assert status.exit_code == 3 and "newer release wrote it" in status.output
    migrate = CliRunner().invoke(main, ["--config", str(config), "state", "migrate"])
    assert migrate.exit_code == 1 and "newer release wrote it" in migrate.output
    assert "Traceback" not in status.output + migrate.output


def test_migrations_a_failing_step_leaves_the_store_as_it_was(tmp_path):
    path = old_store(tmp_path, 1)
    steps = (
        *migrations.MIGRATIONS,
        migrations.Migration(
            3, "a step that breaks", ("CREATE TABLE later (a)", "ALTER TABLE nowhere ADD b")
        ),
    )
    db = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(StateError) as failed:
        migrations.migrate(db, path, steps)
    assert "step 3 (a step that breaks) failed: no such table: nowhere" in str(failed.value)
    assert migrations.schema_version(db) == 0 and migrations.applied(db) == []
    db.close()
    assert "later" not in columns(path) and "outbox" not in columns(path)


def test_migrations_a_later_step_with_data(tmp_path):
    """How a future step reads: SQL and a function, both in the one transaction."""
    path = old_store(tmp_path, 2)

    def backfill(db: sqlite3.Connection) -> None:
        db.execute("UPDATE tables SET note = 'from step 3' WHERE note IS NULL")

    steps = (
        *migrations.MIGRATIONS,
        migrations.Migration(3, "a note", ("ALTER TABLE tables ADD COLUMN seen TEXT", backfill)),
    )
    db = sqlite3.connect(path, isolation_level=None)
    done = migrations.migrate(db, path, steps)
    assert [m.version for m in done] == [1, 2, 3] and migrations.schema_version(db) == 3
    assert db.execute("SELECT note, seen FROM tables").fetchall() == [("from step 3", None)]
    with pytest.raises(StateError, match="schema version 3"):
        migrations.check_not_newer(db, path)  # this code's own steps end at 2
    db.close()


def test_migrations_command_copies_the_store_then_migrates_it(tmp_path, config):
    path = old_store(tmp_path / "state", 1)
    before = path.read_bytes()
    copy = tmp_path / "state" / "state.sqlite.before-test"
    result = CliRunner().invoke(main, ["--config", str(config), "state", "migrate", "--backup", str(copy)])
    assert result.exit_code == 0, result.output
    assert f"schema version 0 -> {migrations.latest()}" in result.output and str(copy) in result.output
    assert copy.read_bytes() == before  # byte for byte: a restore gives back the very file
    assert not Path(f"{copy}-wal").exists()  # the checkpoint emptied it
    assert "outbox" in columns(path)
    again = CliRunner().invoke(main, ["--config", str(config), "state", "migrate"])
    assert again.exit_code == 0 and "up to date" in again.output


def test_migrations_command_without_a_store(tmp_path, config):
    result = CliRunner().invoke(main, ["--config", str(config), "state", "migrate", "--backup", "x"])
    assert result.exit_code == 0 and "nothing to migrate" in result.output
    assert not (tmp_path / "state").exists()


def test_migrations_a_reader_of_a_damaged_store_is_told_so(tmp_path):
    """Reading the version is the first read of the file: damage shows there, with its fix."""
    (tmp_path / "state.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StateError, match="is damaged .* move the file aside"):
        StateStore(tmp_path, readonly=True)
