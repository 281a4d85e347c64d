"""Rendered JSON pages kept per server thread: fresh after every commit, never past the access check."""

from __future__ import annotations

import base64

from support.harness import Harness

from appliance.web import create_app
from appliance.web.data_cache import LARGEST, PageCache, thread_pages

from . import dataset
from .dataset import TOKEN

PAGE = "/api/data/orders.json?_size=5&status=paid"


def test_data_cache_answers_the_agents_commit_at_once(pg, sshd, tmp_path):
    path = dataset.build(pg, sshd, tmp_path)
    client = create_app(dataset.config(path, open_=True)).test_client()
    first = client.get(PAGE)
    assert first.status_code == 200
    assert client.get(PAGE).data == first.data  # the same bytes while nothing changed
    pages = thread_pages()
    assert pages is not None and first.data in pages._pages.values()  # answered from the cache
    row = first.get_json()["rows"][0]
    pg.sql(f"UPDATE dataapi.orders SET note = 'after', updated_at = now() WHERE id = {row['id']}", db="sales")
    with Harness(path) as h:
        h.sync()  # the agent commits on its own connection
    again = client.get(PAGE).get_json()["rows"][0]
    assert again["id"] == row["id"] and again["note"] == "after" != row["note"]
    # The next link carries the host the page was asked on, so a page is kept per host.
    other = client.get(PAGE, headers={"Host": "127.0.0.1"}).get_json()["next"]
    assert other.startswith("http://127.0.0.1/") and client.get(PAGE).get_json()["next"].startswith(
        "http://localhost/"
    )


def test_data_cache_never_answers_past_the_token_or_the_posture(pg, sshd, tmp_path):
    path = dataset.build(pg, sshd, tmp_path)
    guarded = create_app(dataset.config(path, token=True)).test_client()
    ok = guarded.get(PAGE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200
    basic = base64.b64encode(f"x:{TOKEN}".encode()).decode()
    assert guarded.get(PAGE, headers={"Authorization": f"Basic {basic}"}).data == ok.data
    assert guarded.get(PAGE).status_code == 401
    assert guarded.get(PAGE, headers={"Authorization": "Bearer nope"}).status_code == 401
    # Another app on the same thread (so the same connection and pages): closed means 403.
    closed = create_app(dataset.config(path)).test_client()
    assert closed.get(PAGE).status_code == 403


def test_data_cache_is_bounded_by_bytes_and_dropped_on_a_new_version():
    cache = PageCache(limit=1000).at(1)
    for i in range(50):
        cache.put((i,), b"x" * 100)
    assert cache.size <= 1000 and len(cache) == 10
    assert cache.get((0,)) is None and cache.get((49,)) == b"x" * 100  # the oldest went first
    cache.put(("big",), b"x" * 1001)
    assert cache.get(("big",)) is None  # larger than the whole cache: answered, not kept
    assert PageCache().limit >= LARGEST
    assert cache.at(1).get((49,)) is not None
    assert cache.at(2).get((49,)) is None and cache.size == 0
