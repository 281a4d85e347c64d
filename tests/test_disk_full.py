"""A full disk is an outage that says so, keeps the last good data, and ends by itself."""

from __future__ import annotations

import os

from support.harness import Harness
from support.tomlconf import password_file, sections, write_config

from appliance.health import status as health


def _fill(mount, leave: int) -> None:
    free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
    with open(mount / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - leave))


def test_disk_full_is_an_outage_then_recovers(sales, make_config, tmp_path, small_disk, pg, sshd):
    sales.sql(
        "CREATE TABLE good (id int PRIMARY KEY, note text, updated_at timestamptz NOT NULL DEFAULT now());"
        "INSERT INTO good (id, note) SELECT g, 'x' FROM generate_series(1, 100) g",
        db="sales",
    )
    config = sections(
        tmp_path / "state",
        pg,
        password_file(tmp_path / "source.password"),
        sshd,
        ssh={"connect_timeout": "5s"},
        replica={"url": f"sqlite:///{small_disk}/replica.sqlite"},
    )
    cfg = write_config(tmp_path / "appliance.toml", config, [{"name": "public.good", "cursor": "updated_at"}])
    with Harness(cfg) as h:
        h.sync()
        _fill(small_disk, leave=300_000)  # under the margin: 5% of 16 MB
        sales.sql("INSERT INTO good (id, note) SELECT g, 'y' FROM generate_series(101, 200) g", db="sales")
        from appliance.sync.agent import run_once

        full = run_once(h.config, h.link, h.replica, h.store)
        doc = health.build(h.config, h.store)
        assert [r["id"] for r in h.rows("good", "id")][-1] == 100  # the last good data, whole
        assert doc["state"] == "outage" and "disk full" in doc["reason"]
        assert "MB free" in doc["reason"] and "journalctl --vacuum-size" in doc["reason"]
        assert full.summary().startswith("pass with errors:")
        (small_disk / "filler").unlink()
        h.sync()  # space is back: syncing resumes by itself
        doc = health.build(h.config, h.store)
        assert len(h.rows("good", "id")) == 200 and doc["state"] == "ok"
