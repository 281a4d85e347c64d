"""Render once per change: cached bytes keyed on the state store's change marker.

The state changes at most once per sync cycle, yet a page on 50 phones asks every few
seconds; rendering a template per request cost p99 280 ms on the Pi's two cores where
serving ready bytes cost 48 ms (BRIEF 9). So every page is rendered once per
*generation*, and a generation lasts while both hold:

- the marker is unchanged: inode, size and mtime of ``state.sqlite`` and of its WAL.
  Every commit of the agent (or of an ack from this process) appends to the WAL or
  rewrites the file, so any write starts a new generation;
- the wall clock stays in the same ``period``-second bucket, because the page shows ages
  ("synced 2m ago") and lag grows without any write.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

PERIOD = 5.0  # seconds; ages on the page and in /api/status are at most this old

Marker = tuple[tuple[int, int, int] | None, ...]


def store_paths(state_dir: str | os.PathLike) -> tuple[str, str]:
    """Return the paths whose changes mark a write: the database and its WAL."""
    base = os.path.join(state_dir, "state.sqlite")
    return base, base + "-wal"


def store_marker(state_dir: str | os.PathLike, paths: tuple[str, ...] | None = None) -> Marker:
    """Return what changes whenever the state store is written (None for a missing file)."""
    out = []
    for path in paths or store_paths(state_dir):
        try:
            st = os.stat(path)
        except OSError:
            st = None
        # An empty WAL holds nothing: the first reader creates one, which is no change.
        out.append((st.st_ino, st.st_size, st.st_mtime_ns) if st and st.st_size else None)
    return tuple(out)


class _Entry:
    """One cached value; its lock makes concurrent misses render it once (single flight)."""

    __slots__ = ("lock", "ready", "value")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ready = False
        self.value: Any = None


class RenderCache:
    """Values (page bytes, the status document) computed once per generation."""

    def __init__(
        self, state_dir: str | os.PathLike, period: float = PERIOD, clock: Callable[[], float] = time.time
    ) -> None:
        self.state_dir = state_dir
        self._paths = store_paths(state_dir)  # built once: this runs on every request
        self.period = period
        self.clock = clock
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._entries: dict[Hashable, _Entry] = {}
        self._stale: dict[Hashable, Any] = {}  # the previous generation's, same marker only

    def generation(self) -> tuple:
        """Return the current generation's key: the marker and the time bucket."""
        return store_marker(self.state_dir, self._paths), int(self.clock() // self.period)

    def _entry(self, name: Hashable) -> tuple[_Entry, Any]:
        """Return this generation's entry for ``name`` and its stale value (or None)."""
        key = self.generation()
        with self._lock:
            if key != self._key:
                # Only the clock moved: the old values hold the same data with older ages.
                same_data = self._key is not None and key[0] == self._key[0]
                self._stale = {n: e.value for n, e in self._entries.items() if e.ready} if same_data else {}
                self._key, self._entries = key, {}
            return self._entries.setdefault(name, _Entry()), self._stale.get(name)

    def get(self, name: Hashable, make: Callable[[], Any], stale_ok: bool = False) -> Any:
        """Return the value called ``name`` for this generation, computing it on a miss.

        Concurrent misses compute it once. With ``stale_ok``, while one thread computes
        a value that is new only because the clock moved, the others get the previous
        one (at most ``period`` older) instead of waiting.
        """
        entry, stale = self._entry(name)
        if entry.ready:
            return entry.value
        if stale_ok and stale is not None:
            if not entry.lock.acquire(blocking=False):
                return stale
        else:
            entry.lock.acquire()
        try:
            if not entry.ready:
                entry.value = make()  # an exception leaves the entry empty for a retry
                entry.ready = True
            return entry.value
        finally:
            entry.lock.release()

    def peek(self, name: Hashable, stale_ok: bool = False) -> Any:
        """Return this generation's value of ``name`` if it is ready, else None (no work).

        With ``stale_ok``, while another thread computes a value that is new only because
        the clock moved, return the previous one, as ``get`` does: the page's most polled
        paths then keep their fast path through a re-render instead of all queueing for it.
        """
        key = self.generation()
        with self._lock:
            entry = self._entries.get(name) if key == self._key else None
            stale = self._stale.get(name)
        if entry is None:
            return None
        if entry.ready:
            return entry.value
        return stale if stale_ok and entry.lock.locked() else None

    def clear(self) -> None:
        """Forget every value (after this process wrote the store itself)."""
        with self._lock:
            self._key, self._entries, self._stale = None, {}, {}
