"""Owns time: integer milliseconds read through an injected clock.

Core logic never reads a global clock.  Anything with a ``seconds()`` method
(``twisted.internet.reactor``, ``twisted.internet.task.Clock``) is a clock; the
helpers here turn it into HAProxy's integer-millisecond ticks.
"""

from __future__ import annotations

import random as _random
from typing import Protocol


class Clock(Protocol):
    def seconds(self) -> float: ...


def now_ms(clock: Clock) -> int:
    """The clock's current time as integer milliseconds."""
    return int(clock.seconds() * 1000)


class ManualClock:
    """A bare clock for pure-core tests that do not need scheduling."""

    def __init__(self, start: float = 0.0):
        self._now = start

    def seconds(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds


def make_random(seed: int | None = None) -> _random.Random:
    """A private random generator; pass one into anything that needs jitter."""
    return _random.Random(seed)
