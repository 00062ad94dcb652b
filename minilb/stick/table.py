"""Owns one stick table's entries: typed keys, stored data, size cap with LRU purge,
expiry, tracking references and the per-table update sequence the peers read.

Layout (memory matters: a million entries must stay under 200 bytes each):

- ``_shards``: 16 dicts from the normalised key (an int for ``ip``/``integer``
  tables, ``bytes`` otherwise) to a row number, bits 16-19 of the key (or of its
  hash: `SHARD_SHIFT`) choosing the dict: growing one dict of a million keys rehashes it all at once
  (~100-200 ms, a reactor stall), a sixteenth of it costs a sixteenth;
- per-row metadata and every stored data type live in typed column arrays
  (``array('I')`` and friends) indexed by row; freed rows go on a free list.  The
  LRU links and the tracking references are lists instead: they hold row numbers
  and small counts, int objects the key dicts and the interpreter already own, so
  a list costs 4 bytes an entry more than an array and indexes about twice as fast
  on the hot path;
- an index-based doubly linked list (``_lru_prev``/``_lru_next``) holds the entries,
  oldest touch first: every touch (tracking included) moves its entry to the tail.
  Because ``expire`` is the same for every entry of a table, touch order is expiry
  order: expiry pops from the head (`expire_step`, bounded work) and purge-when-full
  takes the same head.  A tracked entry met there is *detached* from the list
  (``_lru_prev[row] == DETACHED``) rather than moved out of order; its next touch
  appends it again, and its release kills it if it expired meanwhile (HAProxy's
  ``stksess_kill_if_expired``) or puts it back by expiry;
- a second linked list (``_upd_prev``/``_upd_next``) orders entries by update id
  (peers-wire.md 9.1): a local change renumbers an entry to ``++update`` and
  moves it to the tail, an entry learned from a peer gets ``++update + 2**31``.

Times are HAProxy ticks: the injected clock's milliseconds modulo 2**32, compared
with signed differences, 0 meaning "never".  Rates are stored as three u32 columns
(tick, curr, prev) and computed by `minilb.stick.counters`.

The hot paths (`track_key`, `release`, the rate readers of the ``sc*_*_rate``
fetches) are generated per table into one namespace, which also caches the tick:
the clock is still read every time, but the tick is recomputed only when it
leaves the current millisecond (see ``_TICK_SOURCE``).  Where the compiled speed-up
``minilb_speedups.stick`` is built, `track_key` and the rate readers are its
equivalents (`minilb/_speedups/stick.pyx`, built from this table's own lists and
arrays); the generated Python stays the reference (tests/test_speedups_stick.py).
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from array import array
from collections.abc import Iterable, Iterator
from math import floor, inf, nextafter
from typing import Any

from minilb import speedups
from minilb.stick import counters
from minilb.stick.datatypes import BY_NAME, DATA_TYPES, DataType

#: the compiled ``track_key`` and rate readers (`minilb/_speedups/stick.pyx`), or None
_speedups = speedups.load("stick", speedups.STICK_API)

MASK32 = 0xFFFFFFFF
HALF32 = 0x80000000
_SHARDS = 16  # key index dicts (see the module docstring)
_SHARD_MASK = _SHARDS - 1
#: a key's dict is chosen by bits 16-19 of the key (of its hash for bytes keys): a
#: dict places an int by its low bits (an int's hash is the int), so choosing by the
#: low bits left every key of a dict on a sixteenth of its first slots (collisions on
#: every lookup: about 30% of a learner's time); the compiled modules use the same bits
SHARD_SHIFT = 16
NIL = -1
DETACHED = -2  # in _lru_prev: a tracked entry taken out of the LRU list (see the module docstring)

# per-row flags
_F_IN_UPDATES = 1  # the entry is in the update list
_F_REMOTE = 2  # its update id is in the remote half (learned from a peer)

#: a learned entry whose expiry falls at most this much before that of the entry
#: learned just before it (the newest in the LRU list) gets the same expiry instead of
#: a walk back through the list: the teacher's and the learner's clocks are read per
#: batch, so a full teach comes a few milliseconds out of order at batch boundaries
LEARNED_EXPIRY_SLACK_MS = 100

_ARRAY_CODE = {"u32": "I", "u64": "Q", "s32": "i", "array_u32": "I"}


def _teach_speedups() -> Any:
    """The compiled peers encoders (``minilb_speedups.teach``), or None: the generated
    ones of `StickTable.wire_encoder` and `StickTable.wire_teach_encoder` then."""
    return speedups.load("teach", speedups.TEACH_API)


class InvalidKey(ValueError):
    """A key that cannot be stored in this table's key type."""


def _s32(value: int) -> int:
    value &= MASK32
    return value - 0x100000000 if value & HALF32 else value


_ZEROS: dict[tuple[str, int], array] = {}


def _zeros(typecode: str, n: int) -> array:
    """A cached array of ``n`` zeros (row chunks)."""
    arr = _ZEROS.get((typecode, n))
    if arr is None:
        arr = _ZEROS[(typecode, n)] = array(typecode, bytes(n * array(typecode).itemsize))
    return arr


def _nils(n: int) -> array:
    arr = _ZEROS.get(("nil", n))
    if arr is None:
        arr = _ZEROS[("nil", n)] = array("i", [NIL]) * n
    return arr


def tick_add(now: int, timeout: int) -> int:
    """HAProxy's ``tick_add``: a tick ``timeout`` ms after ``now``, never 0 (0 means never)."""
    t = (now + timeout) & MASK32
    return t or 1


def ms_edge(ms: int) -> float:
    """The smallest clock reading (seconds) whose ``floor(s * 1000)`` is at least ``ms``."""
    x = ms / 1000
    if floor(x * 1000) >= ms:
        while floor((y := nextafter(x, -inf)) * 1000) >= ms:
            x = y
        return x
    while floor(x * 1000) < ms:
        x = nextafter(x, inf)
    return x


#: the clock of the generated hot paths: ``floor(seconds() * 1000) & MASK32`` read
#: once per millisecond (the float bounds [_lo, _hi) of the current millisecond are
#: exact, so the tick is the one a full computation gives), with the entry expiry
#: of a touch in that millisecond (``_exp_at``)
_TICK_SOURCE = """
_lo = 1.0
_hi = 0.0
_now = 0
_exp_at = 0

def refresh(s):
    global _lo, _hi, _now, _exp_at
    ms = floor(s * 1000)
    _now = ms & MASK32
    _exp_at = ((_now + expire) & MASK32) or 1
    _lo = ms_edge(ms)
    _hi = ms_edge(ms + 1)
    return _now

def now_tick():
    s = seconds()
    if _lo <= s < _hi:
        return _now
    return refresh(s)
"""

#: the same, inlined in a generated function (sets ``now``)
_NOW_LINES = [
    "    s = seconds()",
    "    if _lo <= s < _hi:",
    "        now = _now",
    "    else:",
    "        now = refresh(s)",
]


class Column:
    """The storage of one data type: ``arrays`` holds one array per element
    (three per element for rates: tick, curr, prev); ``period`` for rates."""

    __slots__ = ("dt", "count", "period", "arrays", "strings")

    def __init__(self, dt: DataType, count: int, period: int):
        self.dt = dt
        self.count = count
        self.period = period
        self.strings: list[str | None] | None = None
        if dt.kind == "dict":
            self.arrays: list[array] = []
            self.strings = []
        elif dt.is_rate:
            self.arrays = [array("I") for _ in range(3 * count)]
        else:
            self.arrays = [array(_ARRAY_CODE[dt.kind]) for _ in range(count)]

    def grow(self) -> None:
        for arr in self.arrays:
            arr.append(0)
        if self.strings is not None:
            self.strings.append(None)

    def clear_row(self, row: int) -> None:
        for arr in self.arrays:
            arr[row] = 0
        if self.strings is not None:
            self.strings[row] = None


class Entry:
    """A view of one live entry (row) handed to peers, fetches and the CLI.

    It is only valid while the entry exists; holders that keep it across
    reactor turns must own a reference (`StickTable.ref`)."""

    __slots__ = ("table", "row")

    def __init__(self, table: StickTable, row: int):
        self.table = table
        self.row = row

    @property
    def key(self) -> Any:
        """The normalised key (int for ip/integer, bytes otherwise)."""
        return self.table._keys[self.row]

    @property
    def key_bytes(self) -> bytes:
        """The key as HAProxy stores it and the peers send it."""
        return self.table.key_to_bytes(self.key)

    @property
    def key_text(self) -> str:
        """The key as `show table` prints it."""
        return self.table.key_to_text(self.key)

    @property
    def update_id(self) -> int:
        return self.table.update_id_of(self.row)

    @property
    def ref_count(self) -> int:
        return self.table._ref[self.row]

    def expire_in(self) -> int:
        """Milliseconds until expiry (0 when expired or when the table has no expire)."""
        return self.table.expire_in(self.row)

    def get(self, name: str, idx: int = 0) -> Any:
        return self.table.get(self.row, name, idx)

    def wire_values(self) -> dict[str, Any]:
        return self.table.wire_values(self.row)

    def __repr__(self) -> str:
        return f"<Entry {self.table.name} row={self.row} key={self.key_text}>"


class StickTable:
    """One stick table (see the module docstring for the layout).

    ``spec`` is a `minilb.config.model.TableSpec`; ``clock`` has ``seconds()``.
    """

    def __init__(self, spec: Any, clock: Any):
        self.spec = spec
        self.name: str = spec.name
        self.clock = clock
        self._seconds = clock.seconds
        self.key_type: str = spec.key_type
        self.key_len: int = spec.key_len
        self.size: int = spec.size
        self.expire: int = spec.expire or 0
        self.nopurge: bool = spec.nopurge
        # data columns, in wire-bit order (the order `show table` prints them)
        cols: dict[str, Column] = {}
        for item in sorted(spec.store, key=lambda it: BY_NAME[it.name].bit):
            dt = BY_NAME[item.name]
            count = item.count if dt.is_array else 1
            cols[dt.name] = Column(dt, count or 1, item.period or 0)
        self.columns = cols
        # hot columns resolved once (None when not stored)
        self._c = {name: cols.get(name) for name in BY_NAME}
        # keys and per-row metadata
        self._shards: list[dict[Any, int]] = [{} for _ in range(_SHARDS)]
        self._shard_gets = tuple(shard.get for shard in self._shards)
        self._count = 0  # live entries
        self._keys: array | list = array("I") if self.key_type in ("ip", "integer") else []
        self._exp = array("I")
        # tracking references: a list (small ints are shared objects: 4 bytes an entry
        # more than an array) indexes much faster on the hot path
        self._ref: list[int] = []
        self._flags = bytearray()
        # lists, not arrays: they hold the very int objects the key dicts hold as rows
        # (8 bytes a slot more than an array) and index twice as fast on the hot path
        self._lru_prev: list[int] = []
        self._lru_next: list[int] = []
        self._lru_head = NIL
        self._lru_tail = NIL
        self._useq = array("I")  # update sequence number (the id before the remote offset)
        self._upd_prev = array("i")
        self._upd_next = array("i")
        self._upd_head = NIL
        self._upd_tail = NIL
        self._free: list[int] = []
        self._appliers: dict[tuple, Any] = {}  # remote_applier's, by plan
        self._wire_encoder: Any = False  # wire_encoder(), built on first use
        self._wire_teach: Any = False  # wire_teach_encoder(), built on first use
        self._ip_cache: dict[str, int] = {}  # recent IPv4 texts -> keys (bounded)
        self._empty_key = 0 if isinstance(self._keys, array) else None
        # every data array, flat, for clearing a freed row quickly
        self._data_arrays = [arr for col in cols.values() for arr in col.arrays]
        self._data_strings = [col.strings for col in cols.values() if col.strings is not None]
        self._rows = 0  # rows allocated (live + free)
        # update sequence (peers-wire.md 9.1)
        self.update = 0  # last id handed out (t->update)
        self.local_update = 0  # last id given to a local change (t->localupdate)
        self.commit_update = 0  # set by the peers: ids up to this one were pushed
        # HAProxy numbers updates only in tables that are synchronised with peers
        # (``peers NAME``); the peers layer may also switch it on (``sync = True``)
        # (a table declared in a peers section, named "SECTION/NAME", always is)
        self._sync: bool = spec.peers is not None or "/" in spec.name
        # called with the table after each local change (the peers' wake-up), or None
        self.on_local_update: Any = None
        # single-array columns of the hot path (None when not stored)
        self._c_conn_cur = self._first_array("conn_cur")
        self._c_conn_cnt = self._first_array("conn_cnt")
        self._c_http_req_cnt = self._first_array("http_req_cnt")
        self._c_conn_rate = cols.get("conn_rate")
        self._c_http_req_rate = cols.get("http_req_rate")
        # an http error is counted (and touches the entry) only when either is stored
        self._counts_http_err = cols.get("http_err_cnt") is not None or cols.get("http_err_rate") is not None

        # the hot path, specialised for this table's columns (shadows the methods);
        # the generated functions share one namespace, hence one tick cache
        self._env: dict[str, Any] = {
            "seconds": self._seconds,
            "floor": floor,
            "ms_edge": ms_edge,
            "MASK32": MASK32,
            "HALF32": HALF32,
            "NIL": NIL,
            "DETACHED": DETACHED,
            "expire": self.expire,
            "table": self,
            "shard_gets": self._shard_gets,
            "get_or_create": self.get_or_create,
            "ref": self._ref,
            "exp": self._exp,
            "lru_prev": self._lru_prev,
            "lru_next": self._lru_next,
            "renumber": self._renumber_local,
            "increment": counters.increment,
            "touch": self.touch_local,
            "free_row": self._free_row,
            "insert_by_expiry": self._lru_insert_by_expiry,
            "conn_cur_a": self._c_conn_cur,
            "read_rate": self.read_rate,
        }
        exec(_TICK_SOURCE, self._env)  # noqa: S102 - constant source
        self.now_tick = self._env["now_tick"]  # type: ignore[method-assign]
        # the compiled hot paths' tick cache (None: the generated Python ones)
        self._tick = _speedups.Tick(self._seconds, self._env) if _speedups is not None else None
        self._rate_readers = self._build_rate_readers()
        if self.key_type == "ip":
            self.key_from_sample = self._build_key_from_sample()  # type: ignore[method-assign]
        self.track_key = self._track = self._build_track_key()  # type: ignore[method-assign]
        self.release = self._build_release()  # type: ignore[method-assign]

    @property
    def sync(self) -> bool:
        """Whether local changes are numbered for the peers (rebuilds the hot path when set)."""
        return self._sync

    @sync.setter
    def sync(self, value: bool) -> None:
        self._sync = bool(value)
        self._appliers.clear()
        self.track_key = self._track = self._build_track_key()  # type: ignore[method-assign]
        self.release = self._build_release()  # type: ignore[method-assign]

    def _first_array(self, name: str) -> array | None:
        col = self.columns.get(name)
        return col.arrays[0] if col is not None else None

    # ------------------------------------------------------------------ time
    def now_tick(self) -> int:
        """The clock as a tick (ms modulo 2**32).  Shadowed at construction by the
        generated, cached reading (see ``_TICK_SOURCE``)."""
        return floor(self._seconds() * 1000) & MASK32

    # ------------------------------------------------------------------ keys
    def normalize_key(self, key: Any) -> Any:
        """The stored form of ``key`` given as text, bytes or int; raises `InvalidKey`.

        ip: IPv4 text, 4 bytes or an int (also ``::ffff:a.b.c.d``); ipv6: IPv6 text
        or 16 bytes (IPv4 text is mapped to ``::ffff:a.b.c.d``); integer: an int
        (low 32 bits) or decimal text 0..4294967295; string: text or bytes, truncated
        to ``key_len - 1`` bytes; binary: bytes padded with NULs / truncated to key_len.
        """
        kt = self.key_type
        if kt == "ip":
            if isinstance(key, int):
                return key & MASK32
            if isinstance(key, bytes) and len(key) == 4:
                return int.from_bytes(key, "big")
            try:
                addr = ipaddress.ip_address(key.decode() if isinstance(key, bytes) else key)
            except (ValueError, UnicodeDecodeError) as exc:
                raise InvalidKey("Invalid key") from exc
            if addr.version == 6:
                if addr.ipv4_mapped is None:
                    raise InvalidKey("Invalid key")
                addr = addr.ipv4_mapped
            return int(addr)
        if kt == "ipv6":
            if isinstance(key, bytes) and len(key) == 16:
                return key
            try:
                addr = ipaddress.ip_address(key.decode() if isinstance(key, bytes) else key)
            except (ValueError, UnicodeDecodeError, AttributeError) as exc:
                raise InvalidKey("Invalid key") from exc
            if addr.version == 4:
                return b"\0" * 10 + b"\xff\xff" + addr.packed
            return addr.packed
        if kt == "integer":
            if isinstance(key, int):
                return key & MASK32
            text = key.decode() if isinstance(key, bytes) else key
            if not text.isdigit() or int(text) > MASK32:
                raise InvalidKey("Invalid key")
            return int(text)
        raw = key if isinstance(key, bytes) else str(key).encode()
        if kt == "string":
            raw = raw[: self.key_len - 1]
            nul = raw.find(b"\0")
            return raw if nul < 0 else raw[:nul]
        return raw[: self.key_len].ljust(self.key_len, b"\0")

    def key_from_sample(self, value: Any) -> Any:
        """The stored key for a fetched sample (fast path for IPv4 text in ip tables,
        with a bounded cache of recent addresses); raises `InvalidKey` when the
        sample cannot be a key of this table.

        Shadowed at construction in ip tables by a closure answering cached
        addresses at once (`_build_key_from_sample`)."""
        if value.__class__ is str and self.key_type == "ip":
            cache = self._ip_cache
            key = cache.get(value)
            if key is not None:
                return key
            try:
                if value.count(".") != 3:
                    raise OSError(value)  # inet_aton also takes "10.1": HAProxy does not
                key = int.from_bytes(socket.inet_aton(value), "big")
            except OSError:
                return self.normalize_key(value)
            if len(cache) >= 65536:
                cache.clear()
            cache[value] = key
            return key
        return self.normalize_key(value)

    def _build_key_from_sample(self):
        cached = self._ip_cache.get
        slow = self.key_from_sample

        def key_from_sample(value: Any) -> Any:
            if value.__class__ is str:
                key = cached(value)
                if key is not None:
                    return key
            return slow(value)

        return key_from_sample

    def parse_cli_key(self, text: str) -> Any:
        """A key typed on the CLI (stricter: ip tables refuse IPv6 text)."""
        if self.key_type == "ip":
            try:
                return int(ipaddress.IPv4Address(text))
            except ValueError as exc:
                raise InvalidKey("Invalid key") from exc
        if self.key_type == "ipv6":
            try:
                return ipaddress.IPv6Address(text).packed
            except ValueError as exc:
                raise InvalidKey("Invalid key") from exc
        return self.normalize_key(text)

    def key_to_bytes(self, key: Any) -> bytes:
        if self.key_type == "ip":
            return key.to_bytes(4, "big")
        if self.key_type == "integer":
            return key.to_bytes(4, "little")  # host order, as HAProxy keeps it
        return key

    def key_from_bytes(self, data: bytes) -> Any:
        """The stored key from its peers wire form."""
        if self.key_type == "ip":
            return int.from_bytes(data[:4].ljust(4, b"\0"), "big")
        if self.key_type == "integer":
            return int.from_bytes(data[:4].ljust(4, b"\0"), "little")
        return self.normalize_key(bytes(data))

    def key_to_text(self, key: Any) -> str:
        """The key as `show table` prints it."""
        kt = self.key_type
        if kt == "ip":
            return socket.inet_ntop(socket.AF_INET, key.to_bytes(4, "big"))
        if kt == "ipv6":
            return socket.inet_ntop(socket.AF_INET6, key)
        if kt == "integer":
            return str(key)
        if kt == "string":
            return dump_text(key)
        return key.hex().upper()

    def key_sort_value(self, key: Any) -> Any:
        """The order HAProxy's key tree walks (memcmp of the stored key)."""
        if self.key_type == "integer":
            return key.to_bytes(4, "little")
        return key

    # ------------------------------------------------------------------ rows
    def _shard_of(self, key: Any) -> dict[Any, int]:
        if key.__class__ is int:
            return self._shards[(key >> SHARD_SHIFT) & _SHARD_MASK]
        return self._shards[(hash(key) >> SHARD_SHIFT) & _SHARD_MASK]

    def _shard_expr(self, key: str) -> str:
        """Source choosing the shard of ``key`` (generated hot paths)."""
        if self.key_type in ("ip", "integer"):
            return f"({key} >> {SHARD_SHIFT}) & {_SHARD_MASK}"
        return f"(hash({key}) >> {SHARD_SHIFT}) & {_SHARD_MASK}"

    def __len__(self) -> int:
        return self._count

    @property
    def used(self) -> int:
        return self._count

    def lookup(self, key: Any) -> int | None:
        """The row of a normalised key, or None."""
        return self._shard_of(key).get(key)

    def entry(self, row: int) -> Entry:
        return Entry(self, row)

    def _alloc_row(self) -> int:
        free = self._free
        if free:
            return free.pop()
        # grow every column by a chunk at once (array.extend is far cheaper than one
        # append per column and row); the new rows go on the free list, lowest last
        start = self._rows
        n = min(max(16, start >> 6), 1024)
        self._rows = start + n
        self._flags.extend(bytes(n))
        for arr in (self._exp, self._useq, *self._data_arrays):
            arr.extend(_zeros(arr.typecode, n))
        self._ref.extend([0] * n)
        nils = _nils(n)
        for arr in (self._upd_prev, self._upd_next):
            arr.extend(nils)
        nils_list = [NIL] * n
        self._lru_prev.extend(nils_list)
        self._lru_next.extend(nils_list)
        if isinstance(self._keys, array):
            self._keys.extend(_zeros("I", n))
        else:
            self._keys.extend([None] * n)
        for strings in self._data_strings:
            strings.extend([None] * n)
        free.extend(range(start + n - 1, start, -1))
        return start

    def get_or_create(self, key: Any) -> int | None:
        """The row of a normalised key, created empty when missing; None when the
        table is full and nothing can be purged (or ``nopurge``)."""
        shard = self._shard_of(key)
        row = shard.get(key)
        if row is not None:
            return row
        if self._count >= self.size:
            if self.nopurge or not self.purge_oldest((self.size >> 8) + 1):
                return None
        row = self._alloc_row()
        self._keys[row] = key
        shard[key] = row
        self._count += 1
        self._exp[row] = tick_add(self.now_tick(), self.expire) if self.expire else 0
        self._lru_append(row)
        return row

    def remove(self, row: int) -> bool:
        """Delete an entry nothing tracks; returns whether it was removed."""
        if self._ref[row]:
            return False
        self._free_row(row)
        return True

    def _free_row(self, row: int) -> None:
        self._lru_unlink(row)
        if self._flags[row] & _F_IN_UPDATES:
            self._upd_unlink(row)
        keys = self._keys
        key = keys[row]
        del self._shard_of(key)[key]
        self._count -= 1
        keys[row] = self._empty_key
        self._flags[row] = 0
        self._exp[row] = 0
        for arr in self._data_arrays:
            arr[row] = 0
        for strings in self._data_strings:
            strings[row] = None
        self._free.append(row)

    # ------------------------------------------------------------------ LRU list
    def _lru_append(self, row: int) -> None:
        tail = self._lru_tail
        self._lru_prev[row] = tail
        self._lru_next[row] = NIL
        if tail == NIL:
            self._lru_head = row
        else:
            self._lru_next[tail] = row
        self._lru_tail = row

    def _lru_unlink(self, row: int) -> None:
        prev = self._lru_prev[row]
        if prev == DETACHED:
            self._lru_prev[row] = NIL
            return
        nxt = self._lru_next[row]
        if prev == NIL:
            self._lru_head = nxt
        else:
            self._lru_next[prev] = nxt
        if nxt == NIL:
            self._lru_tail = prev
        else:
            self._lru_prev[nxt] = prev
        self._lru_prev[row] = NIL
        self._lru_next[row] = NIL

    def _lru_insert_by_expiry(self, row: int) -> None:
        """Insert a row that is not in the list keeping it sorted by expiry (usually at
        the tail; the walk back is bounded, so a row whose place lies further back
        than 64 entries goes there and expires a little late)."""
        exp = self._exp[row]
        after = self._lru_tail
        if exp:
            steps = 0
            while after != NIL and _s32(self._exp[after] - exp) > 0 and steps < 64:
                after = self._lru_prev[after]
                steps += 1
        if after == self._lru_tail:
            self._lru_append(row)
            return
        nxt = self._lru_head if after == NIL else self._lru_next[after]
        self._lru_prev[row] = after
        self._lru_next[row] = nxt
        if after == NIL:
            self._lru_head = row
        else:
            self._lru_next[after] = row
        self._lru_prev[nxt] = row

    def _lru_detach(self, row: int) -> None:
        """Take a tracked row out of the LRU list (expiry or purge met it at the head)."""
        self._lru_unlink(row)
        self._lru_prev[row] = DETACHED

    # ------------------------------------------------------------------ update list
    def _upd_append(self, row: int) -> None:
        tail = self._upd_tail
        self._upd_prev[row] = tail
        self._upd_next[row] = NIL
        if tail == NIL:
            self._upd_head = row
        else:
            self._upd_next[tail] = row
        self._upd_tail = row

    def _upd_unlink(self, row: int) -> None:
        prev = self._upd_prev[row]
        nxt = self._upd_next[row]
        if prev == NIL:
            self._upd_head = nxt
        else:
            self._upd_next[prev] = nxt
        if nxt == NIL:
            self._upd_tail = prev
        else:
            self._upd_prev[nxt] = prev

    def update_id_of(self, row: int) -> int:
        """The entry's current update id (0 if never numbered)."""
        if not self._flags[row] & _F_IN_UPDATES:
            return 0
        seq = self._useq[row]
        return (seq + HALF32) & MASK32 if self._flags[row] & _F_REMOTE else seq

    def _renumber_local(self, row: int, hits: int = 1) -> None:
        """Give the entry a fresh local update id (``hits`` consecutive touches use
        ``hits`` ids, the entry keeping the last one, as HAProxy's repeated touches do).
        Nothing to do in a table that no peers synchronise."""
        if not self._sync:
            return
        flags = self._flags[row]
        if flags & _F_IN_UPDATES:
            tail = self._upd_tail
            if row != tail or flags & _F_REMOTE:
                key = self._useq[row]
                if flags & _F_REMOTE:
                    key = (key + HALF32) & MASK32
                if (self.commit_update - key) & MASK32 >= HALF32 and (
                    key - self.local_update
                ) & MASK32 >= HALF32:
                    return  # still waiting to be pushed, and others were numbered after it
            if row != tail:
                # move to the tail (row is in the list and is not the tail)
                prev_a = self._upd_prev
                next_a = self._upd_next
                before = prev_a[row]
                after = next_a[row]
                if before == NIL:
                    self._upd_head = after
                else:
                    next_a[before] = after
                prev_a[after] = before
                prev_a[row] = tail
                next_a[row] = NIL
                next_a[tail] = row
                self._upd_tail = row
        else:
            self._upd_append(row)
        self._flags[row] = (flags | _F_IN_UPDATES) & ~_F_REMOTE
        self.update = self.local_update = self._useq[row] = (self.update + hits) & MASK32
        if self.on_local_update is not None:
            self.on_local_update(self)

    # ------------------------------------------------------------------ touching
    def _lru_to_tail(self, row: int) -> None:
        """Move a row to the LRU tail (most recently used), inlined for speed; a
        detached row is appended."""
        tail = self._lru_tail
        if row == tail:
            return
        prev_a = self._lru_prev
        next_a = self._lru_next
        before = prev_a[row]
        if before == DETACHED:
            prev_a[row] = NIL
            self._lru_append(row)
            return
        after = next_a[row]  # not NIL: row is not the tail
        if before == NIL:
            self._lru_head = after
        else:
            next_a[before] = after
        prev_a[after] = before
        prev_a[row] = tail
        next_a[row] = NIL
        next_a[tail] = row
        self._lru_tail = row

    def touch_local(self, row: int, now: int | None = None) -> None:
        """A local change (traffic, CLI): refresh expiry, renumber, move to the LRU tail."""
        if self.expire:
            if now is None:
                now = self.now_tick()
            self._exp[row] = ((now + self.expire) & MASK32) or 1
        if row != self._lru_tail:
            self._lru_to_tail(row)
        self._renumber_local(row)

    def track_key(self, key: Any, http_request: bool) -> int | None:
        """The hot path of ``track-scN``: find or create the entry, take a reference,
        count ``conn_cur``/``conn_cnt``/``conn_rate`` and touch it (expiry from now,
        LRU tail, renumbered), as HAProxy's ``stream_track_stkctr`` does; with
        ``http_request`` also count ``http_req_cnt``/``http_req_rate`` and touch
        again when either is stored (HAProxy numbers the entry twice).  None when
        the table is full.

        Shadowed at construction by a closure specialised for this table's columns
        (`_build_track_key`); this method only documents the signature."""
        return self._build_track_key()(key, http_request)

    def _lru_to_tail_source(self, indent: str) -> list[str]:
        """Source moving ``row`` to the LRU tail (appending it when detached), for the
        generated hot paths (`_lru_to_tail` inlined)."""
        # rows are >= 0, NIL and DETACHED negative; a row in the list that is not its
        # tail has a next one, and the list it leaves is not empty
        return [
            f"{indent}tail = table._lru_tail",
            f"{indent}if row != tail:",
            f"{indent}    before = lru_prev[row]",
            f"{indent}    if before >= 0:",
            f"{indent}        after = lru_next[row]",
            f"{indent}        lru_next[before] = after",
            f"{indent}        lru_prev[after] = before",
            f"{indent}        lru_next[tail] = row",
            f"{indent}    elif before == NIL:",
            f"{indent}        after = lru_next[row]",
            f"{indent}        table._lru_head = after",
            f"{indent}        lru_prev[after] = NIL",
            f"{indent}        lru_next[tail] = row",
            f"{indent}    elif tail == NIL:",
            f"{indent}        table._lru_head = row",
            f"{indent}    else:",
            f"{indent}        lru_next[tail] = row",
            f"{indent}    lru_prev[row] = tail",
            f"{indent}    lru_next[row] = NIL",
            f"{indent}    table._lru_tail = row",
        ]

    def _build_track_key(self):
        """A ``track_key`` generated for this table: only the stored columns are
        counted, arrays and constants are bound as globals of the generated code,
        and the renumbering is left out of tables no peers synchronise (setting
        `sync` rebuilds it)."""
        env = self._env
        body = [
            "def track_key(key, http_request):",
            f"    row = shard_gets[{self._shard_expr('key')}](key)",
            "    if row is None:",
            "        row = get_or_create(key)",
            "        if row is None:",
            "            return None",
            *_NOW_LINES,
            "    ref[row] += 1",
        ]

        def count(name: str, indent: str) -> None:
            arr = self._first_array(name)
            if arr is not None and self.columns[name].dt.kind in ("u32", "s32"):
                env[name] = arr
                # + 1 wrapping at 32 bits: the array refuses 2**32 (no mask to compute)
                body.extend(
                    [
                        f"{indent}try:",
                        f"{indent}    {name}[row] += 1",
                        f"{indent}except OverflowError:",
                        f"{indent}    {name}[row] = 0",
                    ]
                )

        def count_rate(name: str, indent: str) -> None:
            col = self.columns.get(name)
            if col is None:
                return
            t, c, p = col.arrays
            env[name + "_t"], env[name + "_c"], env[name + "_p"] = t, c, p
            env[name + "_period"] = col.period
            t, c, p, period = name + "_t", name + "_c", name + "_p", name + "_period"
            # within the period (the common case) without the modulo: the difference
            # of two ticks is small then; a wrap-around takes increment()'s path
            body.extend(
                [
                    f"{indent}if 0 <= now - {t}[row] < {col.period}:",
                    f"{indent}    try:",
                    f"{indent}        {c}[row] += 1",
                    f"{indent}    except OverflowError:",
                    f"{indent}        {c}[row] = 0",
                    f"{indent}else:",
                    f"{indent}    {t}[row], {c}[row], {p}[row] = increment(",
                    f"{indent}        {t}[row], {c}[row], {p}[row], now, {period}, 1)",
                ]
            )

        count("conn_cur", "    ")
        count("conn_cnt", "    ")
        count_rate("conn_rate", "    ")
        # the touch: expiry from now, LRU tail (the second touch of an HTTP request
        # happens within the same millisecond: nothing more to move)
        if self.expire:
            body.append("    exp[row] = _exp_at")
        body += self._lru_to_tail_source("    ")
        counts_request = self._c_http_req_cnt is not None or self._c_http_req_rate is not None
        if self.sync:
            body += ["    if not http_request:", "        renumber(row, 1)", "        return row"]
            count("http_req_cnt", "    ")
            count_rate("http_req_rate", "    ")
            body.append(f"    renumber(row, {2 if counts_request else 1})")
        else:
            body.append("    if http_request:")
            count("http_req_cnt", "        ")
            count_rate("http_req_rate", "        ")
            if not counts_request:
                body.append("        pass")
        body.append("    return row")
        exec("\n".join(body), env)  # noqa: S102 - generated from this table's own columns
        if self._tick is not None:
            # the same, compiled (minilb/_speedups/stick.pyx); the generated one stays the reference
            return _speedups.TrackPath(
                self._tick,
                self,
                self._shards,
                self.get_or_create,
                self._renumber_local,
                self._ref,
                self._exp,
                self._lru_prev,
                self._lru_next,
                self._c_conn_cur,
                self._c_conn_cnt,
                self._compiled_rate(self._c_conn_rate),
                self._c_http_req_cnt,
                self._compiled_rate(self._c_http_req_rate),
                bool(self.expire),
                self.sync,
                self.key_type in ("ip", "integer"),
            ).track
        return env["track_key"]

    def _build_release(self):
        """A ``release`` generated for this table (see `_build_track_key`)."""
        env = self._env
        body = [
            "def release(row, conn_cur=False):",
            "    refs = ref[row]",
            "    if refs == 0:",
            "        return",
        ]
        if self._c_conn_cur is not None:
            # HAProxy touches the entry when it decrements a stored conn_cur
            body += [
                "    if conn_cur:",
                "        if conn_cur_a[row]:",
                "            conn_cur_a[row] -= 1",
                "        touch(row)",
            ]
        body += ["    refs = ref[row] = refs - 1", "    if refs:", "        return"]
        if self.expire:
            # stksess_kill_if_expired: an entry whose expiry passed while tracked goes now
            body += [
                *_NOW_LINES,
                "    if (now - exp[row]) & MASK32 < HALF32:",
                "        free_row(row)",
                "        return",
            ]
        body += [
            "    if lru_prev[row] == DETACHED:",
            "        lru_prev[row] = NIL",
            "        insert_by_expiry(row)",
        ]
        exec("\n".join(body), env)  # noqa: S102 - generated from this table's own columns
        return env["release"]

    def _build_rate_readers(self) -> dict[str, Any]:
        """For each stored rate that is not an array: a generated ``read(row)`` giving
        what `read_rate` gives (the fetch hot path).  Within the current period the
        tick difference is small and computed without modulo; anything else (a
        period over, a wrap-around) takes `read_rate`."""
        env = self._env
        readers: dict[str, Any] = {}
        for name, col in self.columns.items():
            if not col.dt.is_rate or col.dt.is_array or col.period <= 0:
                continue
            t, c, p = col.arrays
            env[f"{name}_t"], env[f"{name}_c"], env[f"{name}_p"] = t, c, p
            env[f"{name}_col"] = col
            period = col.period
            body = [
                f"def read_{name}(row):",
                *_NOW_LINES,
                f"    elapsed = now - {name}_t[row]",
                f"    if 0 <= elapsed < {period}:",
                # still in the current period: curr + past * remain // period (what
                # counters.read computes, the common part taken out of the division)
                f"        past = {name}_p[row]",
                "        if not past:",
                f"            return {name}_c[row]",
                f"        curr = {name}_c[row]",
                "        if curr == 0 and past == 1:",
                "            return 1",
                f"        rate = curr + past * ({period} - elapsed) // {period}",
                "        return rate if rate <= MASK32 else rate & MASK32",
                f"    return read_rate({name}_col, row)",
            ]
            exec("\n".join(body), env)  # noqa: S102 - generated from this table's own columns
            readers[name] = env[f"read_{name}"]
            if self._tick is not None:
                reader = _speedups.RateReader(self._tick, self._compiled_rate(col), self.read_rate, col)
                readers[name] = reader.read
        return readers

    def _compiled_rate(self, col: Column | None) -> Any:
        """The compiled view of a rate column (None when not stored)."""
        if col is None:
            return None
        return _speedups.Rate(col.arrays, col.period, counters.increment)

    @staticmethod
    def _count_rate(col: Column, row: int, now: int, inc: int) -> None:
        t, c, p = col.arrays
        tick = t[row]
        if (now - tick) & MASK32 < col.period:
            c[row] = (c[row] + inc) & MASK32
        else:
            t[row], c[row], p[row] = counters.increment(tick, c[row], p[row], now, col.period, inc)

    def read_rate(self, col: Column, row: int, idx: int = 0) -> int:
        """A stored rate's current value (fetch hot path)."""
        a = col.arrays
        base = 3 * idx
        tick = a[base][row]
        curr = a[base + 1][row]
        period = col.period
        now = self.now_tick()
        remain = (tick + period - now) & MASK32
        if remain < HALF32:  # still in the current period (the common case)
            past = a[base + 2][row]
        else:
            return counters.read(tick, curr, a[base + 2][row], now, period)
        if curr == 0 and past <= 1:
            return past
        return ((past * remain + curr * period) // period) & MASK32 if period > 0 else curr

    def ref(self, row: int) -> None:
        """Take a tracking reference: the entry neither expires nor gets purged."""
        self._ref[row] += 1

    def release(self, row: int, conn_cur: bool = False) -> None:
        """Drop a tracking reference, as HAProxy does when a stream or a session
        stops tracking the entry.  With ``conn_cur`` (the end of a tracker) a stored
        conn_cur is decremented and the entry touched; nothing else touches it, so it
        still expires ``expire`` ms after its last touch (the track or a counter).
        When the last reference goes and that expiry has passed meanwhile, the entry
        is removed at once (``stksess_kill_if_expired``).

        Shadowed at construction by a closure specialised for this table
        (`_build_release`); this method only documents the signature."""
        self._build_release()(row, conn_cur)

    # ------------------------------------------------------------------ expiry and purge
    def expire_in(self, row: int) -> int:
        exp = self._exp[row]
        if not exp:
            return 0
        remain = _s32(exp - self.now_tick())
        return remain if remain > 0 else 0

    def idle_ms(self, row: int) -> int:
        """Milliseconds since the entry was last touched (tables with an expire only)."""
        return self.expire - self.expire_in(row) if self.expire else 0

    def next_deadline(self) -> float | None:
        """When (in the clock's seconds) the entry at the head of the LRU list
        expires (tracked or not: a tracked one is then detached); None if never."""
        if not self.expire:
            return None
        row = self._lru_head
        if row == NIL:
            return None
        exp = self._exp[row]
        if not exp:
            return None
        now = self.clock.seconds()
        delta = _s32(exp - (int(now * 1000) & MASK32))
        return now + max(delta, 0) / 1000.0

    def expire_step(self, max_entries: int = 2000) -> int:
        """Remove up to ``max_entries`` expired entries nothing tracks; returns how many.

        The LRU list is in expiry order, so the walk stops at the first entry that
        has not expired.  An expired entry still tracked cannot go: it is detached
        from the list (counted as work, so a step is bounded either way) and its
        release removes it (see `release`)."""
        now = self.now_tick()
        done = work = 0
        exp = self._exp
        ref = self._ref
        while work < max_entries:
            head = self._lru_head
            if head == NIL:
                break
            when = exp[head]
            if not when or (now - when) & MASK32 >= HALF32:
                break
            work += 1
            if ref[head]:
                self._lru_detach(head)
                continue
            self._free_row(head)
            done += 1
        return done

    def purge_oldest(self, count: int) -> int:
        """Remove up to ``count`` least recently used untracked entries, soonest
        expiry first as HAProxy's purge does; returns how many.  Tracked entries met
        at the head are detached from the list (their release puts them back)."""
        done = 0
        seen = 0
        limit = self._count
        ref = self._ref
        while done < count and seen < limit:
            head = self._lru_head
            if head == NIL:
                break
            seen += 1
            if ref[head]:
                self._lru_detach(head)
                continue
            self._free_row(head)
            done += 1
        return done

    # ------------------------------------------------------------------ data access
    def stores(self, name: str, idx: int = 0) -> bool:
        col = self.columns.get(name)
        return col is not None and idx < col.count

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    def get(self, row: int, name: str, idx: int = 0) -> Any:
        """The value of a stored type as fetches and `show table` see it (rates are
        read at the current time); None when the type is not stored."""
        col = self.columns.get(name)
        if col is None or idx >= col.count:
            return None
        kind = col.dt.kind
        if kind == "dict":
            return col.strings[row]
        if col.dt.is_rate:
            a = col.arrays
            base = 3 * idx
            return counters.read(
                a[base][row], a[base + 1][row], a[base + 2][row], self.now_tick(), col.period
            )
        return col.arrays[idx][row]

    def set(self, row: int, name: str, value: Any, idx: int = 0) -> bool:
        """Set a value with the CLI's semantics (rates: curr=value, prev=0, tick=now);
        integers wrap to their width.  Returns False when the type is not stored."""
        col = self.columns.get(name)
        if col is None or idx >= col.count:
            return False
        kind = col.dt.kind
        if kind == "dict":
            col.strings[row] = value
        elif col.dt.is_rate:
            tick, curr, prev = counters.set_value(value, self.now_tick())
            base = 3 * idx
            col.arrays[base][row] = tick
            col.arrays[base + 1][row] = curr
            col.arrays[base + 2][row] = prev
        elif kind == "u64":
            col.arrays[idx][row] = value & 0xFFFFFFFFFFFFFFFF
        elif kind == "s32":
            col.arrays[idx][row] = _s32(value)
        else:
            col.arrays[idx][row] = value & MASK32
        return True

    def add(self, row: int, name: str, inc: int = 1, idx: int = 0) -> bool:
        """Add to a counter (wrapping) or count events on a rate; False if not stored."""
        col = self.columns.get(name)
        if col is None or idx >= col.count:
            return False
        if col.dt.is_rate:
            a = col.arrays
            base = 3 * idx
            tick, curr, prev = counters.increment(
                a[base][row], a[base + 1][row], a[base + 2][row], self.now_tick(), col.period, inc
            )
            a[base][row] = tick
            a[base + 1][row] = curr
            a[base + 2][row] = prev
            return True
        arr = col.arrays[idx]
        if col.dt.kind == "u64":
            arr[row] = (arr[row] + inc) & 0xFFFFFFFFFFFFFFFF
        elif col.dt.kind == "s32":
            arr[row] = _s32(arr[row] + inc)
        else:
            arr[row] = (arr[row] + inc) & MASK32
        return True

    def sub_floor(self, row: int, name: str) -> None:
        """Decrement a counter that must not go below zero (conn_cur)."""
        col = self.columns.get(name)
        if col is not None and col.arrays[0][row]:
            col.arrays[0][row] -= 1

    def rate_state(self, row: int, name: str, idx: int = 0) -> tuple[int, int, int] | None:
        """The raw (tick, curr, prev) of a stored rate."""
        col = self.columns.get(name)
        if col is None or not col.dt.is_rate or idx >= col.count:
            return None
        base = 3 * idx
        return col.arrays[base][row], col.arrays[base + 1][row], col.arrays[base + 2][row]

    def values(self, row: int) -> list[tuple[str, int, Any]]:
        """Every stored value as (type name, element index, value), in bit order."""
        out = []
        for name, col in self.columns.items():
            for idx in range(col.count):
                out.append((name, idx, self.get(row, name, idx)))
        return out

    # ------------------------------------------------------------------ peers
    def wire_values(self, row: int) -> dict[str, Any]:
        """Stored values in their peers form: ints for counters, ``(age, curr, prev)``
        for rates, tuples of those for arrays, str or None for server_key."""
        now = self.now_tick()
        out: dict[str, Any] = {}
        for name, col in self.columns.items():
            kind = col.dt.kind
            if kind == "dict":
                out[name] = col.strings[row]
            elif col.dt.is_rate:
                a = col.arrays
                items = tuple(
                    (counters.age_of(a[3 * i][row], now), a[3 * i + 1][row], a[3 * i + 2][row])
                    for i in range(col.count)
                )
                out[name] = items if col.dt.is_array else items[0]
            elif col.dt.is_array:
                out[name] = tuple(col.arrays[i][row] for i in range(col.count))
            else:
                out[name] = col.arrays[0][row]
        return out

    def apply_remote(self, key: Any, values: dict[str, Any], expire_ms: int | None = None) -> int | None:
        """Store an update learned from a peer; returns the row (None if the table is full).

        ``key`` is a normalised key (see `key_from_bytes`), ``values`` as in
        `wire_values`; types this table does not store and "local" types
        (conn_cur) are ignored, arrays keep their first local-count elements.
        The entry is not announced as a local change: if it is not numbered yet
        it gets the remote id ``++update + 2**31``.
        """
        row = self.get_or_create(key)
        if row is None:
            return None
        now = self.now_tick()
        for name, value in values.items():
            col = self.columns.get(name)
            if col is None or col.dt.local:
                continue
            kind = col.dt.kind
            if kind == "dict":
                col.strings[row] = value
            elif col.dt.is_rate:
                items = value if col.dt.is_array else (value,)
                for i, (age, curr, prev) in enumerate(items[: col.count]):
                    col.arrays[3 * i][row] = counters.from_age(age, now)
                    col.arrays[3 * i + 1][row] = curr & MASK32
                    col.arrays[3 * i + 2][row] = prev & MASK32
            elif col.dt.is_array:
                for i, v in enumerate(value[: col.count]):
                    col.arrays[i][row] = v & MASK32
            elif kind == "s32":
                col.arrays[0][row] = _s32(value)
            elif kind == "u64":
                col.arrays[0][row] = value & 0xFFFFFFFFFFFFFFFF
            else:
                col.arrays[0][row] = value & MASK32
        timeout = self.expire if expire_ms is None else expire_ms
        if self.expire or expire_ms is not None:
            self._exp[row] = tick_add(now, timeout)
        when = self._exp[row]
        before = self._lru_prev[row]
        if (
            row == self._lru_tail
            and before != NIL
            and when
            and 0 < _s32(self._exp[before] - when) < LEARNED_EXPIRY_SLACK_MS
        ):
            self._exp[row] = self._exp[before]  # see LEARNED_EXPIRY_SLACK_MS
        else:
            if row == self._lru_tail and before != NIL and when:
                # the same slack behind an entry newer than both (one that traffic
                # keeps touching, at the tail): the learned ones stay in teach order
                first = self._lru_prev[before]
                if first != NIL and 0 < _s32(self._exp[first] - when) < LEARNED_EXPIRY_SLACK_MS:
                    self._exp[row] = self._exp[first]
            self._lru_unlink(row)
            self._lru_insert_by_expiry(row)
        if self._sync and not self._flags[row] & _F_IN_UPDATES:
            self.update = seq = (self.update + 1) & MASK32
            self._useq[row] = seq
            self._flags[row] |= _F_IN_UPDATES | _F_REMOTE
            self._upd_append(row)
        return row

    def remote_applier(self, plan: tuple[tuple[str, str, int], ...]) -> Any:
        """A fast `apply_remote` for updates whose values come as a tuple of
        ``(name, value)`` pairs in the order of ``plan`` (the sender's DEFINE:
        ``(name, kind, count)`` per value): ``apply(key, values, expire_ms) -> row``.

        Generated once per plan from `remote_apply_source`; plans with arrays,
        dictionary or signed values get a wrapper around `apply_remote`."""
        cached = self._appliers.get(plan)
        if cached is not None:
            return cached
        source = self.remote_apply_source(plan)
        if source is None:
            applier = self._generic_applier(plan)
        else:
            env, prologue, lines = source
            env = dict(env)
            body = ["def apply(key, values, expire_ms):"]
            body += ["    " + line for line in prologue]
            for i, (_name, kind, _count) in enumerate(plan):
                if kind == "rate":
                    body.append(f"    age_{i}, curr_{i}, prev_{i} = values[{i}][1]")
                else:
                    body.append(f"    val_{i} = values[{i}][1]")
            body += ["    " + line for line in lines]
            body.append("    return row")
            exec("\n".join(body), env)  # noqa: S102 - generated from this table's own columns
            applier = env["apply"]
        self._appliers[plan] = applier
        return applier

    def remote_apply_source(self, plan: tuple[tuple[str, str, int], ...]) -> tuple[dict, list, list] | None:
        """Python source storing one learned update of ``plan`` (see `remote_applier`),
        for code generated around it (the peers decoder inlines it in its loop):
        ``(env, prologue, lines)``.  ``prologue`` sets ``now`` (run it once per batch);
        ``lines`` expect ``key`` (stored form), ``expire_ms`` (None: the table's own
        expire) and per plan value ``i`` either ``val_i`` (a counter) or ``age_i``,
        ``curr_i``, ``prev_i`` (a rate), in range (below 2**32, 2**64 for u64: the
        decoder masks them as it does for `Update`), and leave the entry's row (None: table full)
        in ``row``.  The entry is not announced as a local change: if it is not
        numbered yet it gets the remote id ``++update + 2**31``.  Types this table does
        not store (or "local" ones) are skipped; None for plans with arrays,
        dictionary or signed values (use `apply_remote`)."""
        env: dict[str, Any] = {
            "shards": self._shards,
            "free": self._free,
            "keys": self._keys,
            "size": self.size,
            "lru_next": self._lru_next,
            "get_or_create": self.get_or_create,
            "seconds": self._seconds,
            "exp": self._exp,
            "flags": self._flags,
            "useq": self._useq,
            "lru_prev": self._lru_prev,
            "lru_relink": self._lru_relink,
            "upd_prev": self._upd_prev,
            "upd_next": self._upd_next,
            "table": self,
            "MASK32": MASK32,
            "MASK64": 0xFFFFFFFFFFFFFFFF,
            "NIL": NIL,
            "IN_UPDATES": _F_IN_UPDATES | _F_REMOTE,
            "expire": self.expire,
            "HALF": HALF32,
            "SLACK": LEARNED_EXPIRY_SLACK_MS,
            # whether ``lines`` number the entry (for a compiled equivalent of them)
            "SYNC": self._sync,
        }
        prologue = ["now = int(seconds() * 1000) & MASK32"]
        body = [
            f"shard = shards[{self._shard_expr('key')}]",
            "row = shard.get(key)",
            "if row is None:",
            # `get_or_create` inline while a free row is at hand (the bulk of a full
            # teach): the new entry goes to the LRU tail, its expiry is set below
            # (test_remote_applier_stores_what_apply_remote_stores keeps them equal)
            "    if free and table._count < size:",
            "        row = free.pop()",
            "        keys[row] = key",
            "        shard[key] = row",
            "        table._count += 1",
            "        tail = table._lru_tail",
            "        lru_prev[row] = tail",
            "        lru_next[row] = NIL",
            "        if tail == NIL:",
            "            table._lru_head = row",
            "        else:",
            "            lru_next[tail] = row",
            "        table._lru_tail = row",
            "    else:",
            "        row = get_or_create(key)",
            "if row is not None:",
        ]
        for i, (name, kind, _count) in enumerate(plan):
            col = self.columns.get(name)
            if col is None or col.dt.local:
                continue
            if kind != col.dt.kind or col.dt.is_array or kind not in ("u32", "u64", "rate"):
                return None
            if kind == "rate":
                env[f"t{i}"], env[f"c{i}"], env[f"p{i}"] = col.arrays
                body += [
                    f"    t{i}[row] = (now - age_{i}) & MASK32 & ~1",
                    f"    c{i}[row] = curr_{i}",
                    f"    p{i}[row] = prev_{i}",
                ]
            else:
                env[f"a{i}"] = col.arrays[0]
                body.append(f"    a{i}[row] = val_{i}")
        body += [
            "    if expire_ms is not None:",
            "        when = exp[row] = ((now + expire_ms) & MASK32) or 1",
        ]
        if self.expire:
            body += ["    else:", "        when = exp[row] = ((now + expire) & MASK32) or 1"]
        else:
            body += ["    else:", "        when = exp[row]"]
        body += [
            # already the newest by expiry at the LRU tail (the common case): nothing to
            # move; a little older than the tail: as old as it (as `apply_remote`)
            "    if row != table._lru_tail:",
            "        lru_relink(row)",
            "    elif (before := lru_prev[row]) != NIL and 0 < (ahead := (exp[before] - when) & MASK32) < HALF:",
            "        if when and ahead < SLACK:",
            "            exp[row] = exp[before]",
            # one entry newer than this one at the tail (typically one that traffic
            # tracks and releases all the time): step in front of it, as
            # `_lru_insert_by_expiry` would after one step, without the calls
            "        elif when and (",
            "            (first := lru_prev[before]) == NIL",
            "            or not 0 < (behind := (exp[first] - when) & MASK32) < HALF",
            "            or behind < SLACK",
            "        ):",
            # (within the slack behind the one before it: as old as that one)
            "            if first != NIL and 0 < behind < HALF:",
            "                exp[row] = exp[first]",
            "            lru_next[before] = NIL",
            "            table._lru_tail = before",
            "            lru_prev[row] = first",
            "            lru_next[row] = before",
            "            lru_prev[before] = row",
            "            if first == NIL:",
            "                table._lru_head = row",
            "            else:",
            "                lru_next[first] = row",
            "        else:",
            "            lru_relink(row)",
        ]
        if self._sync:
            body += [
                "    if not flags[row] & 1:",
                "        table.update = seq = (table.update + 1) & MASK32",
                "        useq[row] = seq",
                "        flags[row] |= IN_UPDATES",
                # `_upd_append`, inline
                "        tail = table._upd_tail",
                "        upd_prev[row] = tail",
                "        upd_next[row] = NIL",
                "        if tail == NIL:",
                "            table._upd_head = row",
                "        else:",
                "            upd_next[tail] = row",
                "        table._upd_tail = row",
            ]
        return env, prologue, body

    def wire_encoder(self) -> Any:
        """For ``ip`` tables of plain counters and rates: a generated
        ``encode(update_id, expire, now, row) -> bytes`` giving the whole peers
        update message of an entry (``update_id`` None: incremental; ``expire`` None:
        not TIMED), byte for byte what `minilb.peers.codec.Encoder.encode_entry`
        gives for `wire_values`; None for other tables.  The compiled
        ``minilb_speedups.teach.Encode`` instead when it is built (`minilb.speedups`)."""
        if self._wire_encoder is not False:
            return self._wire_encoder
        self._wire_encoder = None
        if self.key_type != "ip" or any(
            col.dt.kind not in ("u32", "u64") and not (col.dt.is_rate and not col.dt.is_array)
            for col in self.columns.values()
        ):
            return None
        fast = _teach_speedups()
        if fast is not None:
            self._wire_encoder = fast.Encode(self._keys, self._wire_value_arrays())
            return self._wire_encoder
        import struct  # noqa: PLC0415 - only the peers need it

        from minilb.peers.varint import encode as venc  # noqa: PLC0415

        env: dict[str, Any] = {
            "U32": struct.Struct(">I").pack,
            "U32_2": struct.Struct(">II").pack,
            "venc": venc,
            "keys": self._keys,
            "M": MASK32,
        }
        lines = [
            "def encode(update_id, expire, now, row):",
            "    if update_id is not None:",
            "        if expire is not None:",
            "            body = bytearray(U32_2(update_id & M, expire & M))",
            "            msg_type = 0x85",
            "        else:",
            "            body = bytearray(U32(update_id & M))",
            "            msg_type = 0x80",
            "    elif expire is not None:",
            "        body = bytearray(U32(expire & M))",
            "        msg_type = 0x86",
            "    else:",
            "        body = bytearray()",
            "        msg_type = 0x81",
            "    body += U32(keys[row])",
        ]

        lines += self._wire_value_lines(env, "body", "    ")
        lines += [
            "    n = len(body)",
            "    if n < 240:",
            "        return bytes((10, msg_type, n)) + body",
            "    return bytes((10, msg_type)) + venc(n) + body",
        ]
        exec("\n".join(lines), env)  # noqa: S102 - generated from this table's own columns
        self._wire_encoder = env["encode"]
        return self._wire_encoder

    def _wire_value_lines(self, env: dict[str, Any], out: str, indent: str) -> list[str]:
        """Source appending the row's values (``row``, ``now`` in scope) to the
        bytearray ``out`` in wire order (the generated encoders of `wire_encoder`)."""
        lines: list[str] = []

        def put(expr: str) -> None:
            # peers-wire.md 2.1, inline (values here are below 2**64)
            lines.extend(
                [
                    f"{indent}v = {expr}",
                    f"{indent}if v < 240:",
                    f"{indent}    {out}.append(v)",
                    f"{indent}else:",
                    f"{indent}    {out}.append((v & 255) | 240)",
                    f"{indent}    v = (v - 240) >> 4",
                    f"{indent}    while v >= 128:",
                    f"{indent}        {out}.append((v & 255) | 128)",
                    f"{indent}        v = (v - 128) >> 7",
                    f"{indent}    {out}.append(v)",
                ]
            )

        for i, col in enumerate(self.columns.values()):
            if col.dt.is_rate:
                env[f"t{i}"], env[f"c{i}"], env[f"p{i}"] = col.arrays
                put(f"(now - t{i}[row]) & M")
                put(f"c{i}[row]")
                put(f"p{i}[row]")
            else:
                env[f"a{i}"] = col.arrays[0]
                put(f"a{i}[row]")
        return lines

    def _wire_value_arrays(self) -> list[tuple[array, bool]]:
        """The arrays of the values of an update in wire order, each with whether it
        holds a rate's tick (sent as its age) rather than a value (the compiled
        encoders' view of `_wire_value_lines`)."""
        arrays: list[tuple[array, bool]] = []
        for col in self.columns.values():
            if col.dt.is_rate:
                tick, curr, prev = col.arrays
                arrays += [(tick, True), (curr, False), (prev, False)]
            else:
                arrays.append((col.arrays[0], False))
        return arrays

    def wire_teach_encoder(self) -> Any:
        """For the tables `wire_encoder` handles: a generated
        ``teach(row, end, budget, timed, previous) -> (data, row, previous, count)``
        encoding, in row order from ``row`` (below ``end``), up to ``budget`` live
        entries as the update messages of a full teach (TIMED with the remaining
        expiry when ``timed``; INCREMENTAL when an entry's id follows ``previous``,
        the id of the entry sent before), all in one bytes; it returns where to go on,
        the last id sent and how many entries it encoded.  None for other tables.
        The compiled ``minilb_speedups.teach.Teach`` instead when it is built (same
        bytes, tens of times faster; its ``compiled`` attribute is true)."""
        if self._wire_teach is not False:
            return self._wire_teach
        self._wire_teach = None
        if self.wire_encoder() is None:
            return None
        fast = _teach_speedups()
        if fast is not None:
            self._wire_teach = fast.Teach(
                self._seconds,
                self._keys,
                self._shards,
                self._flags,
                self._useq,
                self._exp,
                self._wire_value_arrays(),
                _F_IN_UPDATES,
                _F_REMOTE,
            )
            return self._wire_teach
        import struct  # noqa: PLC0415 - only the peers need it

        from minilb.peers.varint import encode as venc  # noqa: PLC0415

        env: dict[str, Any] = {
            "U32": struct.Struct(">I").pack,
            "U32_2": struct.Struct(">II").pack,
            "venc": venc,
            "keys": self._keys,
            "shard_gets": self._shard_gets,
            "flags": self._flags,
            "useq": self._useq,
            "exp": self._exp,
            "seconds": self._seconds,
            "M": MASK32,
            "HALF": HALF32,
            "IN_UPDATES": _F_IN_UPDATES,
            "REMOTE": _F_REMOTE,
            # class, type and a one-byte length set once the body is known
            **{f"H{t:x}": bytes((10, t, 0)) for t in (0x80, 0x81, 0x85, 0x86)},
        }
        lines = [
            "def teach(row, end, budget, timed, previous):",
            "    now = int(seconds() * 1000) & M",
            "    out = bytearray()",
            "    count = 0",
            "    while row < end and count < budget:",
            "        key = keys[row]",
            f"        if shard_gets[{self._shard_expr('key')}](key) != row:",
            "            row += 1",
            "            continue",  # a free row, or freed and not reused
            "        fl = flags[row]",
            "        if fl & IN_UPDATES:",
            "            uid = (useq[row] + HALF) & M if fl & REMOTE else useq[row]",
            "        else:",
            "            uid = 0",
            "        implicit = previous is not None and uid == (previous + 1) & M",
            "        previous = uid",
            "        start = len(out)",
            "        if timed:",
            "            left = exp[row]",
            "            if left:",
            "                left = (left - now) & M",
            "                if left >= HALF:",
            "                    left = 0",  # already expired
            "            if implicit:",
            "                out += H86",
            "                out += U32(left)",
            "            else:",
            "                out += H85",
            "                out += U32_2(uid, left)",
            "        elif implicit:",
            "            out += H81",
            "        else:",
            "            out += H80",
            "            out += U32(uid)",
            "        out += U32(key)",
        ]
        lines += self._wire_value_lines(env, "out", "        ")
        lines += [
            "        n = len(out) - start - 3",
            "        if n < 240:",
            "            out[start + 2] = n",
            "        else:",
            "            out[start + 2 : start + 3] = venc(n)",
            "        count += 1",
            "        row += 1",
            "    return bytes(out), row, previous, count",
        ]
        exec("\n".join(lines), env)  # noqa: S102 - generated from this table's own columns
        self._wire_teach = env["teach"]
        return self._wire_teach

    def _generic_applier(self, plan: tuple) -> Any:
        apply_remote = self.apply_remote

        def apply(key: Any, values: tuple, expire_ms: int | None) -> int | None:
            return apply_remote(key, dict(values), expire_ms)

        return apply

    def _lru_relink(self, row: int) -> None:
        self._lru_unlink(row)
        self._lru_insert_by_expiry(row)

    def updates_after(self, update_id: int) -> Iterator[tuple[int, Entry]]:
        """Entries changed locally after ``update_id`` up to `local_update`, as
        ``(update_id, entry)`` in id order.

        Lazy and safe to keep between batches (``itertools.islice``): entries
        renumbered meanwhile move behind the cursor and are met again later; the
        walk from the tail back to ``update_id`` costs what lies after it.
        """
        row = self._upd_start_after(update_id)
        while row != NIL:
            flags = self._flags[row]
            seq = self._useq[row]
            nxt = self._upd_next[row]
            if not flags & _F_REMOTE:
                if _s32(seq - self.local_update) > 0:
                    return
                yield seq, Entry(self, row)
                # resume after what we yielded even if the table changed meanwhile
                if not (self._flags[row] & _F_IN_UPDATES and self._useq[row] == seq):
                    nxt = self._upd_start_after(seq)
                else:
                    nxt = self._upd_next[row]
                update_id = seq
            row = nxt

    def _upd_start_after(self, update_id: int) -> int:
        """The first row in the update list numbered after ``update_id`` (local ids).

        Searched from both ends at once (ids grow along the list), so the cost is the
        distance from the nearer end: a first push (``update_id`` before every entry)
        and a push after a recent ack are both immediate, even at a million entries."""
        useq = self._useq
        flags = self._flags
        nxt_a = self._upd_next
        prev_a = self._upd_prev
        fwd = self._upd_head
        back = self._upd_tail
        first = NIL
        while fwd != NIL and back != NIL:
            if not flags[fwd] & _F_REMOTE and 0 < (useq[fwd] - update_id) & MASK32 < HALF32:
                return fwd  # the first local id after update_id (remote rows before it are skipped)
            if not flags[back] & _F_REMOTE and not 0 < (useq[back] - update_id) & MASK32 < HALF32:
                return first
            first = back
            fwd = nxt_a[fwd]
            back = prev_a[back]
        return NIL if fwd == NIL else first

    def entries(self) -> Iterator[Entry]:
        """Every entry (for a full teach), in row order (see `live_rows`)."""
        for row in self.live_rows():
            yield Entry(self, row)

    @property
    def row_end(self) -> int:
        """One past the highest row number allocated (live or free)."""
        return self._rows

    def live_rows(self) -> Iterator[int]:
        """The rows live when met, in row order (creation order in a table that never
        freed a row), lazily: safe across changes of the table between batches;
        rows allocated after the walk started are not visited."""
        keys = self._keys
        shards = self._shards
        if self.key_type in ("ip", "integer"):
            for row in range(self._rows):
                key = keys[row]
                if shards[(key >> SHARD_SHIFT) & _SHARD_MASK].get(key) == row:
                    yield row
        else:
            for row in range(self._rows):
                key = keys[row]
                if key is not None and shards[(hash(key) >> SHARD_SHIFT) & _SHARD_MASK].get(key) == row:
                    yield row

    def rows(self) -> Iterable[int]:
        """Every live row (a view: do not change the table while iterating)."""
        return itertools.chain.from_iterable(shard.values() for shard in self._shards)

    # ------------------------------------------------------------------ misc
    def ref_count(self, row: int) -> int:
        return self._ref[row]

    def sorted_rows(self) -> list[int]:
        """Rows in HAProxy's key-tree order (what `show table` lists)."""
        sort_value = self.key_sort_value
        items = itertools.chain.from_iterable(shard.items() for shard in self._shards)
        return [row for _, row in sorted(items, key=lambda kv: sort_value(kv[0]))]


def dump_text(data: bytes) -> str:
    """HAProxy's ``dump_text`` of a string key: stops at NUL, escapes space, ``=``,
    backslash and control characters."""
    out = []
    for c in data:
        if c == 0:
            break
        if 0x20 < c < 0x7F and c not in (0x5C, 0x3D):
            out.append(chr(c))
        elif c in _ESCAPES:
            out.append("\\" + _ESCAPES[c])
        else:
            out.append(f"\\x{c:02X}")
    return "".join(out)


_ESCAPES = {0x20: " ", 0x09: "t", 0x0A: "n", 0x0D: "r", 0x1B: "e", 0x5C: "\\", 0x3D: "="}

# every catalogue type, re-exported for callers iterating in bit order
ALL_TYPES = DATA_TYPES
