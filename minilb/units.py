"""Owns HAProxy's number syntaxes: time (``10s``, ``1m``, ``500``, ``100us``) and size (``100k``, ``1m``, ``1g``).

Times are returned in integer milliseconds (HAProxy's unit for timeouts and
expiry); sizes as integers.  Errors raise `ValueError` with HAProxy-like wording.
"""

from __future__ import annotations

import re

_TIME_UNITS = {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_TIME_RE = re.compile(r"^(\d+)(us|ms|s|m|h|d)?$")
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
_SIZE_RE = re.compile(r"^(\d+)([kKmMgG]?)$")


def parse_time(text: str, default_unit: str = "ms") -> int:
    """Parse an HAProxy time value into milliseconds (rounded up for microseconds)."""
    m = _TIME_RE.match(text.strip())
    if m is None:
        raise ValueError(f"unexpected character in time value '{text}'")
    unit = m.group(2) or default_unit
    value = int(m.group(1)) * _TIME_UNITS[unit]
    if unit == "us":
        return -(-int(m.group(1)) // 1000)
    value = int(value)
    if value >= 1 << 31:
        raise ValueError(f"timer overflow in argument '{text}' (maximum value is 2147483647 ms)")
    return value


def parse_size(text: str) -> int:
    """Parse an HAProxy size (``size 1m`` in stick tables: k, m, g are powers of 1024)."""
    m = _SIZE_RE.match(text.strip())
    if m is None:
        raise ValueError(f"unexpected character in size value '{text}'")
    return int(m.group(1)) * _SIZE_UNITS[m.group(2).lower()]


def format_time(ms: int) -> str:
    """Render milliseconds the shortest way HAProxy accepts back."""
    for unit, factor in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms and ms % factor == 0:
            return f"{ms // factor}{unit}"
    return f"{ms}ms"
