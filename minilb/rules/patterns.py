"""Owns pattern matching: the ACL match methods (``-m str|beg|end|sub|reg|dir|dom|
found|bool|int|len|ip|bin|meth``) compiled into closures over precomputed data
(sets for exact strings, prefix tuples, one combined regex, IP prefix buckets), and
pattern files (``-f FILE``).

`compile_matcher(method, patterns, icase)` returns ``match(value) -> bool`` taking a
raw sample value (see `minilb.rules.samples`) and casting it as the method needs.
`compile_matcher_with_values` does the same for maps and returns the mapped value.
Pattern errors raise `SampleError` with HAProxy's wording.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

from minilb.rules.samples import (
    IPv4,
    IPv6,
    SampleError,
    as_bin,
    as_bool,
    as_int,
    as_ip,
    as_str,
    cfg_str,
    read_pattern_lines,
)

MATCH_METHODS = (
    "found",
    "bool",
    "int",
    "ip",
    "bin",
    "len",
    "str",
    "beg",
    "end",
    "sub",
    "reg",
    "dir",
    "dom",
    "meth",
)
#: methods that take no pattern at all
PATTERNLESS = ("found", "bool")
INT_OPERATORS = {"eq", "ge", "gt", "le", "lt"}
_INF = float("inf")


# --------------------------------------------------------------------------- pattern files


def read_pattern_file(path: str) -> list[str]:
    """Patterns of a ``-f`` file: one per line, blank lines and ``#`` comments skipped."""
    return read_pattern_lines(path)


# --------------------------------------------------------------------------- IP sets


class IPSet:
    """IPv4/IPv6 networks bucketed by prefix length: a lookup is one dict probe per
    distinct length, longest prefix first."""

    def __init__(self) -> None:
        self.v4: dict[int, dict[int, Any]] = {}
        self.v6: dict[int, dict[int, Any]] = {}
        self._v4_order: list[tuple[int, dict[int, Any]]] = []
        self._v6_order: list[tuple[int, dict[int, Any]]] = []

    def add(self, text: str, value: Any = True) -> None:
        """Add ``ADDR``, ``ADDR/LEN`` or ``ADDR/MASK``; raises ValueError when invalid."""
        net = parse_network(text)
        buckets = self.v4 if net.version == 4 else self.v6
        bits = 32 if net.version == 4 else 128
        mask = ((1 << bits) - 1) ^ ((1 << (bits - net.prefixlen)) - 1)
        bucket = buckets.setdefault(mask, {})
        bucket.setdefault(int(net.network_address), value)
        self._v4_order = sorted(self.v4.items(), reverse=True)
        self._v6_order = sorted(self.v6.items(), reverse=True)

    def __bool__(self) -> bool:
        return bool(self.v4 or self.v6)

    def lookup(self, addr: Any) -> Any:
        """The value of the longest network holding ``addr`` (an address object), or None."""
        t = type(addr)
        if t is IPv4:
            n = int(addr)
            for mask, bucket in self._v4_order:
                v = bucket.get(n & mask)
                if v is not None:
                    return v
            if self._v6_order:
                return self._lookup6((0xFFFF << 32) | n)
            return None
        if t is IPv6:
            n = int(addr)
            if self._v6_order:
                v = self._lookup6(n)
                if v is not None:
                    return v
            mapped = addr.ipv4_mapped
            if mapped is not None and self._v4_order:
                return self.lookup(mapped)
            return None
        if addr is None:
            return None
        return self.lookup(as_ip(addr))

    def _lookup6(self, n: int) -> Any:
        for mask, bucket in self._v6_order:
            v = bucket.get(n & mask)
            if v is not None:
                return v
        return None


def parse_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    addr, slash, mask = text.partition("/")
    if slash and "." in mask and ":" not in addr:
        # dotted netmask
        return ipaddress.IPv4Network(f"{addr}/{mask}", strict=False)
    if slash and not mask.isdigit():
        raise ValueError(text)
    return ipaddress.ip_network(text, strict=False)


# --------------------------------------------------------------------------- integers


def parse_int_patterns(patterns: list[str], what_len: bool = False) -> list[tuple[float, float]]:
    """``eq ge gt le lt`` operators (sticky for later values) and ``a:b`` ranges."""
    ranges: list[tuple[float, float]] = []
    op = "eq"
    for p in patterns:
        if p in INT_OPERATORS:
            op = p
            continue
        if ":" in p:
            lo_s, _, hi_s = p.partition(":")
            try:
                lo = int(lo_s) if lo_s else -_INF
                hi = int(hi_s) if hi_s else _INF
            except ValueError:
                raise SampleError(f"'{p}' is not a number") from None
            ranges.append((lo, hi))
            continue
        if not re.fullmatch(r"[+-]?\d+", p):
            if op != "eq" or ranges:
                raise SampleError(f"'{p}' is neither a number nor a supported operator")
            raise SampleError(f"'{p}' is not a number")
        n = int(p)
        ranges.append(
            {"eq": (n, n), "ge": (n, _INF), "gt": (n + 1, _INF), "le": (-_INF, n), "lt": (-_INF, n - 1)}[op]
        )
    return ranges


def _int_matcher(
    ranges: list[tuple[float, float]], measure: Callable[[Any], int | None]
) -> Callable[[Any], bool]:
    if all(lo == hi for lo, hi in ranges):
        exact = frozenset(int(lo) for lo, _ in ranges)

        def match_set(v: Any) -> bool:
            n = measure(v)
            return n is not None and n in exact

        return match_set
    if len(ranges) == 1:
        lo, hi = ranges[0]

        def match_one(v: Any) -> bool:
            n = measure(v)
            return n is not None and lo <= n <= hi

        if measure is as_int:
            match_one.int_range = (lo, hi)  # type: ignore[attr-defined]  # see acl._plain_term_pred
        return match_one

    def match_any(v: Any) -> bool:
        n = measure(v)
        if n is None:
            return False
        for lo, hi in ranges:
            if lo <= n <= hi:
                return True
        return False

    return match_any


def _len_of(v: Any) -> int | None:
    s = as_str(v)
    return None if s is None else len(s)


# --------------------------------------------------------------------------- strings


def _word_finder(delims: str, patterns: list[str], icase: bool) -> Callable[[str], int]:
    """Index of the first pattern found as a delimited word of the value, or -1.

    A pattern matches where it is preceded by the start or a delimiter and followed by
    the end or a delimiter (HAProxy's ``dir`` and ``dom`` methods); delimiters at the
    pattern's own ends are ignored.
    """
    d = re.escape(delims)
    pieces = []
    for i, p in enumerate(patterns):
        core = p.strip(delims)
        pieces.append(f"(?P<p{i}>(?:^|(?<=[{d}])){re.escape(core)}(?=[{d}]|$))")
    rx = re.compile("|".join(pieces), re.IGNORECASE if icase else 0) if pieces else None

    def find(v: str) -> int:
        if rx is None:
            return -1
        m = rx.search(v)
        if m is None:
            return -1
        return int(m.lastgroup[1:])

    return find


def _combined_regex(patterns: list[str], icase: bool) -> Callable[[str], int]:
    flags = re.IGNORECASE if icase else 0
    compiled = []
    for p in patterns:
        try:
            compiled.append(re.compile(p, flags))
        except re.error as e:
            msg = str(e).split(" at position")[0]
            raise SampleError(f"regex '{p}' is invalid (error={msg}, erroffset={e.pos or 0})") from None
    if len(compiled) == 1:
        search = compiled[0].search

        def one(v: str) -> int:
            return 0 if search(v) is not None else -1

        return one

    def many(v: str) -> int:
        for i, rx in enumerate(compiled):
            if rx.search(v) is not None:
                return i
        return -1

    return many


def _str_index_finder(method: str, patterns: list[str], icase: bool) -> Callable[[str], int]:
    """For maps: the index of the best pattern matching the value, or -1."""
    pats = [p.lower() for p in patterns] if icase else patterns
    if method in ("str", "meth"):
        first: dict[str, int] = {}
        for i, p in enumerate(pats):
            first.setdefault(p, i)
        return lambda v: first.get(v.lower() if icase else v, -1)
    if method == "beg":
        order = sorted(range(len(pats)), key=lambda i: -len(pats[i]))

        def beg(v: str) -> int:
            v = v.lower() if icase else v
            for i in order:
                if v.startswith(pats[i]):
                    return i
            return -1

        return beg
    if method == "end":
        order = sorted(range(len(pats)), key=lambda i: -len(pats[i]))

        def end(v: str) -> int:
            v = v.lower() if icase else v
            for i in order:
                if v.endswith(pats[i]):
                    return i
            return -1

        return end
    if method == "sub":

        def sub(v: str) -> int:
            v = v.lower() if icase else v
            for i, p in enumerate(pats):
                if p in v:
                    return i
            return -1

        return sub
    if method == "reg":
        return _combined_regex(patterns, icase)
    if method == "dir":
        return _word_finder("/?", patterns, icase)
    if method == "dom":
        return _word_finder("/?.:", patterns, icase)
    raise SampleError(f"unknown matching method '{method}'")


def compile_matcher_with_values(
    method: str, entries: list[tuple[str, Any]], icase: bool
) -> Callable[[Any], Any]:
    """A map lookup ``fn(value) -> mapped value | None`` using match ``method``."""
    keys = [k for k, _ in entries]
    values = [v for _, v in entries]
    find = _str_index_finder(method, keys, icase)

    def lookup(v: Any) -> Any:
        s = as_str(v)
        if s is None:
            return None
        i = find(s)
        return None if i < 0 else values[i]

    return lookup


def compile_matcher(method: str, patterns: list[str], icase: bool) -> Callable[[Any], bool]:
    """``match(value) -> bool`` for ACL match ``method`` over ``patterns``."""
    patterns = [cfg_str(p) for p in patterns]
    if method == "found":
        return lambda v: v is not None
    if method == "bool":
        return lambda v: bool(as_bool(v))
    if method == "int":
        return _int_matcher(parse_int_patterns(patterns), as_int)
    if method == "len":
        return _int_matcher(parse_int_patterns(patterns), _len_of)
    if method == "ip":
        nets = IPSet()
        for p in patterns:
            try:
                nets.add(p)
            except ValueError:
                raise SampleError(f"'{p}' is not a valid IPv4 or IPv6 address") from None
        return lambda v: nets.lookup(v) is not None
    if method == "bin":
        blobs = set()
        for p in patterns:
            try:
                blobs.add(bytes.fromhex(p))
            except ValueError:
                raise SampleError(f"'{p}' is not a valid hex string") from None
        return lambda v: as_bin(v) in blobs
    if not patterns:
        return lambda v: False
    if method in ("str", "meth"):
        if icase:
            lowered = frozenset(p.lower() for p in patterns)

            def str_i(v: Any) -> bool:
                s = v if type(v) is str else as_str(v)
                return s is not None and s.lower() in lowered

            return str_i
        exact = frozenset(patterns)

        def str_exact(v: Any) -> bool:
            s = v if type(v) is str else as_str(v)
            return s in exact

        return str_exact
    if method in ("beg", "end"):
        pats = tuple(p.lower() for p in patterns) if icase else tuple(patterns)
        use_beg = method == "beg"

        def affix(v: Any) -> bool:
            s = v if type(v) is str else as_str(v)
            if s is None:
                return False
            if icase:
                s = s.lower()
            return s.startswith(pats) if use_beg else s.endswith(pats)

        return affix
    if method == "sub":
        pats_sub = tuple(p.lower() for p in patterns) if icase else tuple(patterns)
        if len(pats_sub) == 1:
            (needle,) = pats_sub

            def sub1(v: Any) -> bool:
                s = v if type(v) is str else as_str(v)
                if s is None:
                    return False
                return needle in (s.lower() if icase else s)

            return sub1

        def sub(v: Any) -> bool:
            s = v if type(v) is str else as_str(v)
            if s is None:
                return False
            if icase:
                s = s.lower()
            return any(p in s for p in pats_sub)

        return sub
    if method in ("reg", "dir", "dom"):
        find = _str_index_finder(method, patterns, icase)

        def rx(v: Any) -> bool:
            s = v if type(v) is str else as_str(v)
            return s is not None and find(s) >= 0

        return rx
    raise SampleError(f"unknown matching method '{method}' when parsing ACL expression")
