"""Opt-in timestamps of a reload's steps, for `scripts/bench_reload.py`'s breakdown.

With ``MINILB_RELOAD_TRACE=1`` in the environment (the master passes it on to its
workers), `mark(event)` writes one line to stderr::

    [TRACE] (PID) WALL CPU event

WALL is ``time.time()`` (comparable between the master and its workers), CPU the
process's CPU seconds so far.  Without the variable `mark` does nothing (one test
of a module constant), so the hooks cost nothing in production.
"""

from __future__ import annotations

import os
import time

ENABLED = bool(os.environ.get("MINILB_RELOAD_TRACE"))


def mark(event: str) -> None:
    if ENABLED:
        line = f"[TRACE] ({os.getpid()}) {time.time():.6f} {time.process_time():.3f} {event}\n"
        try:
            os.write(2, line.encode())
        except OSError:
            pass


def process_started() -> float:
    """When this process was started (``time.time()`` scale, from /proc; 0.0 if unknown):
    what an exec and the interpreter's own start-up cost comes before any mark."""
    try:
        with open("/proc/self/stat") as f:
            start_ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")
