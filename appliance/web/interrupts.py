"""End SQLite statements at their deadline from one watching thread.

SQLite's progress handler (replica_read) looks at the clock between virtual-machine
steps, every PROGRESS_STEPS of them, and one step can be one function call of any length
(``instr`` or ``replace`` over long strings): eight rows took 7 s past a 2 s limit. Here
a thread calls ``sqlite3.Connection.interrupt()``, which SQLite allows from any thread,
when a statement's deadline passes; SQLite then ends the statement at the next step, so
at most the one function call running at the deadline finishes first.

One thread for the process, started on first use: a timer thread per statement would
cost a thread start on every JSON page.
"""

from __future__ import annotations

import sqlite3
import threading
import time


class Interrupter:
    """Interrupt a connection whose statement runs past its deadline."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._watched: dict[int, tuple[float, sqlite3.Connection]] = {}
        self._wake_at = float("inf")  # when the thread looks next (inf: when told)
        self._thread: threading.Thread | None = None

    def watch(self, db: sqlite3.Connection, deadline: float) -> None:
        """Interrupt ``db`` at ``deadline`` (time.monotonic) unless ``unwatch`` comes first."""
        with self._cond:
            self._watched[id(db)] = (deadline, db)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sql-deadline", daemon=True)
                self._thread.start()
            if deadline < self._wake_at:
                self._cond.notify()

    def unwatch(self, db: sqlite3.Connection) -> None:
        """Forget ``db``: its statement is done. After this returns, no interrupt comes.

        Interrupts are sent holding the same lock, so none can reach a connection that has
        moved on to its next statement, or that its owner is closing.
        """
        with self._cond:
            self._watched.pop(id(db), None)

    def _run(self) -> None:
        with self._cond:
            while True:
                now = time.monotonic()
                for key, (deadline, db) in list(self._watched.items()):
                    if deadline <= now:
                        del self._watched[key]
                        db.interrupt()
                self._wake_at = min((d for d, _ in self._watched.values()), default=float("inf"))
                self._cond.wait(None if self._wake_at == float("inf") else self._wake_at - now)


INTERRUPTER = Interrupter()
