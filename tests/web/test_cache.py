"""Render once per change: the marker, the time bucket, single flight."""

from __future__ import annotations

import threading
import time

from appliance.health.store import StateStore
from appliance.web.cache import RenderCache, store_marker


def test_cache_marker_changes_on_every_write_not_on_reads(tmp_path):
    assert store_marker(tmp_path) == (None, None)
    with StateStore(tmp_path) as store:
        store.put("a", 1)
        first = store_marker(tmp_path)
        with StateStore(tmp_path, readonly=True) as reader:
            reader.get("a")
        assert store_marker(tmp_path) == first
        store.put("a", 2)
        assert store_marker(tmp_path) != first


def test_cache_serves_one_value_per_generation(tmp_path):
    now = [100.0]
    cache = RenderCache(tmp_path, period=5, clock=lambda: now[0])
    calls = []

    def make():
        calls.append(1)
        return len(calls)

    assert cache.get("page", make) == 1
    assert cache.get("page", make) == 1
    now[0] += 5  # a new time bucket
    assert cache.get("page", make) == 2
    with StateStore(tmp_path) as store:
        store.put("x", 1)  # a write
    assert cache.get("page", make) == 3
    cache.clear()
    assert cache.get("page", make) == 4


def test_cache_concurrent_misses_render_once(tmp_path):
    cache = RenderCache(tmp_path, clock=lambda: 0.0)
    calls = []
    started = threading.Barrier(8)

    def make():
        calls.append(1)
        time.sleep(0.05)  # widen the window in which the others arrive
        return b"page"

    def ask():
        started.wait()
        assert cache.get("page", make) == b"page"

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [1]


def test_cache_a_failed_render_is_retried(tmp_path):
    cache = RenderCache(tmp_path, clock=lambda: 0.0)
    attempts = []

    def make():
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("disk hiccup")
        return b"ok"

    try:
        cache.get("page", make)
    except OSError:
        pass
    assert cache.get("page", make) == b"ok" and len(attempts) == 2


def test_cache_stale_value_while_another_thread_renders_after_the_clock_moved(tmp_path):
    now = [0.0]
    cache = RenderCache(tmp_path, period=5, clock=lambda: now[0])
    assert cache.get("page", lambda: b"old", stale_ok=True) == b"old"
    now[0] = 5.0
    rendering, release = threading.Event(), threading.Event()

    def slow():
        rendering.set()
        release.wait(5)
        return b"new"

    worker = threading.Thread(target=lambda: cache.get("page", slow, stale_ok=True))
    worker.start()
    rendering.wait(5)
    assert cache.get("page", lambda: b"other", stale_ok=True) == b"old"  # no waiting
    assert cache.peek("page") is None
    release.set()
    worker.join()
    assert cache.get("page", lambda: b"other", stale_ok=True) == b"new"
    assert cache.peek("page") == b"new"


def test_cache_no_stale_value_after_a_write(tmp_path):
    cache = RenderCache(tmp_path, clock=lambda: 0.0)
    assert cache.get("page", lambda: b"before", stale_ok=True) == b"before"
    with StateStore(tmp_path) as store:
        store.put("ack", {"state": "outage"})
    assert cache.get("page", lambda: b"after", stale_ok=True) == b"after"
