"""Owns the timing of stick-table expiry: one timer for all tables of a process,
armed at the earliest `StickTable.next_deadline`, each run doing bounded work.

Pure: the scheduler is injected (anything with ``callLater(delay, fn)`` returning a
cancellable call and ``seconds()``: the reactor, or ``task.Clock`` in tests).  Each
run removes at most ``step`` expired entries per table (`StickTable.expire_step`),
so it never blocks long (see scripts/bench_stick.py); when a table had more, the
next run comes at once.  The timer is never armed more than ``max_wait`` seconds
ahead, so entries added meanwhile (an empty table getting its first entry, an
update from a peer with a shorter expiry) are not missed.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class TableExpiry:
    def __init__(self, tables: Iterable[Any], scheduler: Any, step: int = 2000, max_wait: float = 1.0):
        self.tables = [t for t in tables if t.expire]
        self.scheduler = scheduler
        self.step = step
        self.max_wait = max_wait
        self._call = None
        self.removed = 0  # entries expired so far (for stats and tests)

    def start(self) -> None:
        if self.tables and self._call is None:
            self._arm(0.0)

    def stop(self) -> None:
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None

    def _arm(self, delay: float) -> None:
        self._call = self.scheduler.callLater(max(delay, 0.0), self.run)

    def run(self) -> None:
        """Expire what is due, then arm the timer for what comes next."""
        self._call = None
        busy = False
        for table in self.tables:
            done = table.expire_step(self.step)
            self.removed += done
            if done >= self.step:
                busy = True
        if busy:
            self._arm(0.0)
            return
        now = self.scheduler.seconds()
        delay = self.max_wait
        for table in self.tables:
            deadline = table.next_deadline()
            if deadline is not None:
                delay = min(delay, deadline - now)
        self._arm(delay)
