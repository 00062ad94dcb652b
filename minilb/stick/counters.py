"""Owns HAProxy 2.6's frequency counter arithmetic (``freq_ctr``), as pure integer functions.

A frequency counter is three unsigned 32-bit numbers: ``tick`` (when the current
period started, in the process's millisecond clock modulo 2**32), ``curr`` (events
since ``tick``) and ``prev`` (events in the previous full period).  The stick table
stores them in column arrays, so the functions here take and return plain ints
instead of objects (see peers-wire.md section 8.2).

- `increment`: add events, rotating the period first when one has passed
  (``prev = curr``), or resetting both when two have passed.
- `read`: the sliding-window rate ``curr + prev * remaining / period`` with
  HAProxy's integer rounding and its anti-flapping rule for very low rates.
- `from_age` / `age_of`: the peers wire form (age relative to now).

All arithmetic on ticks is modulo 2**32 with the signed/unsigned reinterpretations
HAProxy's C code performs, so values agree at wrap-around too.
"""

from __future__ import annotations

MASK32 = 0xFFFFFFFF


def _s32(value: int) -> int:
    """Reinterpret a 32-bit pattern as a signed int (C's ``(int)`` cast)."""
    value &= MASK32
    return value - 0x100000000 if value & 0x80000000 else value


def increment(tick: int, curr: int, prev: int, now: int, period: int, inc: int = 1) -> tuple[int, int, int]:
    """Count ``inc`` events at ``now`` (ms); returns the new ``(tick, curr, prev)``.

    Within the period the current counter grows (wrapping at 32 bits).  Once
    ``now - tick >= period`` the current period becomes the previous one and the
    new events start the new current one at ``tick + period``; if even that start
    is a full period ago, the previous count is dropped and ``tick = now``.  The
    stored tick always has its low bit clear (HAProxy uses it as a lock bit).
    """
    now &= MASK32
    if (now - tick) & MASK32 < period:
        return tick, (curr + inc) & MASK32, prev
    prev = curr
    curr = inc & MASK32
    tick = (tick + period) & MASK32
    if (now - tick) & MASK32 >= period:
        prev = 0
        tick = now
    return tick & ~1 & MASK32, curr, prev


def total(tick: int, curr: int, prev: int, now: int, period: int) -> int:
    """HAProxy's ``freq_ctr_total`` with flapping correction: events over the window,
    scaled by ``period`` (divide by ``period`` to get the rate)."""
    remain = _s32(tick + period - now)
    past = prev
    if remain < 0:
        # the current period is over: it becomes the past one, unless it too is over
        remain += period
        past = curr if remain >= 0 else 0
        curr = 0
    if curr == 0 and past <= 1:
        # anti-flapping at very low rates: report the previous period as is
        return past * period
    return past * remain + curr * period


def read(tick: int, curr: int, prev: int, now: int, period: int) -> int:
    """The rate HAProxy reports at ``now`` (``read_freq_ctr_period``)."""
    if period <= 0:
        return curr
    return (total(tick, curr, prev, now & MASK32, period) // period) & MASK32


def set_value(value: int, now: int) -> tuple[int, int, int]:
    """The CLI's ``set table ... data.X_rate N``: ``curr = N``, ``prev = 0``, ``tick = now``."""
    return now & MASK32, value & MASK32, 0


def age_of(tick: int, now: int) -> int:
    """The wire ``age`` of a counter: how long ago its current period started (mod 2**32)."""
    return (now - tick) & MASK32


def from_age(age: int, now: int) -> int:
    """The local tick of a counter received with ``age`` (low bit cleared, as HAProxy)."""
    return (now - age) & MASK32 & ~1
