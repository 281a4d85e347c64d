"""Whole-table CSV exports written by worker processes: the same bytes, in order, workers stopped."""

from __future__ import annotations

import csv
import io
import os
import random
import resource
from pathlib import Path

import pytest
from support.wait import wait_until

from appliance.web import create_app, data_export
from appliance.web import data_query as dq
from appliance.web.data_rows import csv_text
from appliance.web.replica_read import ReadOnly, replica_file

from . import dataset


@pytest.fixture(scope="module")
def cfg_path(pg, sshd, tmp_path_factory):
    return dataset.build(pg, sshd, tmp_path_factory.mktemp("dataexport"))


@pytest.mark.parametrize(
    "url", ["/api/data/orders.csv", "/api/data/orders.csv?status=paid", "/api/data/nokey.csv"]
)
def test_data_export_in_workers_is_the_one_process_export_byte_for_byte(cfg_path, monkeypatch, url):
    client = create_app(dataset.config(cfg_path, open_=True)).test_client()
    monkeypatch.setattr(data_export, "MIN_CHUNKS", 10**9)
    alone = client.get(url)
    assert alone.status_code == 200
    monkeypatch.setattr(data_export, "MIN_CHUNKS", 2)
    monkeypatch.setattr(data_export, "CHUNK", 7)  # the 250 rows in 36 chunks over the workers
    before = _children_cpu()
    together = client.get(url).data  # streamed: the workers run while it is read
    assert _children_cpu() > before  # worker processes wrote it (and were waited for)
    assert together == alone.data
    assert len(list(csv.reader(io.StringIO(together.decode())))) > 2 * 7


def test_data_export_writes_alone_when_no_worker_can_start(cfg_path, monkeypatch, caplog):
    """No process left to start (the unit's TasksMax, say): the export is the same bytes,
    written in the server's thread, and the log says why."""
    client = create_app(dataset.config(cfg_path, open_=True)).test_client()
    monkeypatch.setattr(data_export, "MIN_CHUNKS", 10**9)
    alone = client.get("/api/data/orders.csv").data
    monkeypatch.setattr(data_export, "MIN_CHUNKS", 2)
    monkeypatch.setattr(data_export, "CHUNK", 7)
    monkeypatch.setattr(data_export.sys, "executable", "/nonexistent/python")  # cannot be started
    answer = client.get("/api/data/orders.csv")
    assert answer.status_code == 200 and answer.data == alone
    assert "a worker could not start" in caplog.text
    assert data_export._one.acquire(blocking=False)  # and the next export may use workers again
    data_export._one.release()


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def test_data_export_closed_early_stops_its_workers(cfg_path, monkeypatch):
    monkeypatch.setattr(data_export, "MIN_CHUNKS", 2)
    monkeypatch.setattr(data_export, "CHUNK", 5)
    monkeypatch.setenv("APPLIANCE_API_TOKEN", "not-for-the-workers")  # web.api_token_env, say
    path = replica_file(dataset.config(cfg_path).replica_url)
    with ReadOnly(path) as ro:
        q = dq.parse(dq.table_info(ro, "orders"), {}, {}, None)
        others = set(_children())  # the fixtures' servers
        stream = data_export.export_csv(ro, q, [])
        try:
            next(stream)  # the first chunk: the workers are running
            workers = set(_children()) - others
            assert len(workers) == data_export.WORKERS
            for pid in workers:  # they inherit what finds Python, not the page's secrets
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                assert b"PATH=" in environ and b"not-for-the-workers" not in environ
        finally:
            stream.close()  # what waitress does when the client goes away
        wait_until(lambda: not (set(_children()) & workers), what="the workers to end")


def _children() -> list[int]:
    pid = os.getpid()
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


_VALUES = [
    None,
    "",
    "a",
    'x"y',
    "a,b",
    "l\nm",
    "c\rd",
    " sp ",
    "\0",
    "é✓",
    0,
    -5,
    2**62,
    1.5,
    1 / 7,
    float("inf"),
]


def test_data_csv_text_is_what_the_csv_module_writes():
    rng = random.Random(17)
    for _ in range(3000):
        width, count = rng.randint(2, 5), rng.randint(1, 6)
        if rng.random() < 0.3:  # columns whose every value needs quotes, or none does
            pools = [
                rng.choice([['x"y', "a,b"], ["a", "b"], [1, 2.5], [None, "a,b"], ["a\0,", "b,"]])
                for _ in range(width)
            ]
            rows = [tuple(rng.choice(p) for p in pools) for _ in range(count)]
        else:
            rows = [tuple(rng.choice(_VALUES) for _ in range(width)) for _ in range(count)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerows(rows)
        assert csv_text(rows, width) == buffer.getvalue(), rows
        assert csv_text([(*r, 99) for r in rows], width) == buffer.getvalue()  # a paging rowid left out
    assert csv_text([(None,)], 1) is None and csv_text([(b"blob", 1)], 2) is None  # the module's cases
