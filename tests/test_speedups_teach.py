"""`minilb_speedups.teach`: the compiled peers encoders give exactly what the generated
ones of `StickTable.wire_encoder` and `StickTable.wire_teach_encoder` give (bytes,
rows walked, previous id, count, errors).

Each test feeds the same operations to two tables on two clocks kept in step; one
encodes with the generated code (MINILB_PURE set when its encoders are built), the
other with the compiled module.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import codec, varint
from minilb.peers.sync import table_define
from minilb.speedups import TEACH_API
from minilb.stick.table import StickTable
from tests.support.speedups import choose

M = 0xFFFFFFFF

#: every data type the encoders handle: u32 and u64 counters, plain rates
ALL_SPEC = TableSpec(
    BUILTIN,
    "all",
    "all",
    "ip",
    4,
    1000,
    expire=600_000,
    peers="p",
    store=(
        StoreItem("gpt0"),
        StoreItem("gpc0"),
        StoreItem("gpc0_rate", period=1000),
        StoreItem("conn_cnt"),
        StoreItem("conn_rate", period=10_000),
        StoreItem("conn_cur"),
        StoreItem("sess_cnt"),
        StoreItem("sess_rate", period=60_000),
        StoreItem("http_req_cnt"),
        StoreItem("http_req_rate", period=10_000),
        StoreItem("http_err_cnt"),
        StoreItem("http_err_rate", period=1),
        StoreItem("bytes_in_cnt"),
        StoreItem("bytes_in_rate", period=5000),
        StoreItem("bytes_out_cnt"),
        StoreItem("bytes_out_rate", period=86_400_000),
        StoreItem("gpc1"),
        StoreItem("gpc1_rate", period=3000),
        StoreItem("http_fail_cnt"),
        StoreItem("http_fail_rate", period=2000),
    ),
)
U32_NAMES = ("gpt0", "gpc0", "conn_cnt", "sess_cnt", "http_req_cnt", "http_err_cnt", "gpc1", "http_fail_cnt")
U64_NAMES = ("bytes_in_cnt", "bytes_out_cnt")
RATE_NAMES = tuple(item.name for item in ALL_SPEC.store if item.name.endswith("_rate"))
PERIODS = {item.name: item.period for item in ALL_SPEC.store if item.period}

#: a smaller table for the random tests (small enough to purge)
SMALL_SPEC = attrs.evolve(
    ALL_SPEC,
    size=48,
    store=(
        StoreItem("gpc0"),
        StoreItem("conn_cur"),
        StoreItem("http_req_rate", period=10_000),
        StoreItem("bytes_in_cnt"),
    ),
)


def varint_edges(top: int) -> list[int]:
    """The largest and smallest value of every varint length up to ``top``."""
    edges = [0, top]
    for width in range(2, 11):
        lo, hi = 0, top
        while lo < hi:  # the smallest value taking ``width`` bytes
            mid = (lo + hi) // 2
            if len(varint.encode(mid)) >= width:
                hi = mid
            else:
                lo = mid + 1
        if len(varint.encode(lo)) == width:
            edges += [lo - 1, lo]
    return sorted(set(edges))


U32_EDGES = varint_edges(M)
U64_EDGES = varint_edges(2**64 - 1)


def test_varint_edges_cover_every_length():
    assert sorted({len(varint.encode(v)) for v in U32_EDGES}) == [1, 2, 3, 4, 5]
    assert sorted({len(varint.encode(v)) for v in U64_EDGES}) == list(range(1, 11))


@pytest.fixture
def compiled(monkeypatch):
    choose("compiled", "teach", TEACH_API, monkeypatch)


class Twin:
    """Two tables fed the same operations on two clocks in step: ``pure`` encodes with
    the generated code, ``fast`` with the compiled module."""

    def __init__(self, spec: TableSpec, start: float = 5000.0, sync: bool | None = None):
        self.clocks = (task.Clock(), task.Clock())
        for clock in self.clocks:
            clock.advance(start)
        self.pure, self.fast = (StickTable(spec, clock) for clock in self.clocks)
        if sync is not None:
            self.pure.sync = self.fast.sync = sync

    def do(self, op, *args):
        """``op(table, *args)`` on both tables; the results must agree."""
        a, b = op(self.pure, *args), op(self.fast, *args)
        assert a == b
        return a

    def advance(self, seconds: float) -> None:
        for clock in self.clocks:
            clock.advance(seconds)

    def encoders(self):
        """((generated encode, generated teach), (compiled encode, compiled teach))."""
        built = []
        for table, pure in ((self.pure, True), (self.fast, False)):
            with pytest.MonkeyPatch.context() as mp:
                if pure:
                    mp.setenv("MINILB_PURE", "1")
                else:
                    mp.delenv("MINILB_PURE", raising=False)
                built.append((table.wire_encoder(), table.wire_teach_encoder()))
        (encode, teach), (fast_encode, fast_teach) = built
        assert not hasattr(encode, "compiled") and not hasattr(teach, "compiled")
        assert fast_encode.compiled and fast_teach.compiled
        return built

    def assert_same_teach(self, windows=(1, 3, 10_000), budgets=(1, 2, 5, 1000), previous=(None, 0)):
        """Both teach encoders walk the whole table alike, step for step, for every
        window (rows a step may scan), budget, previous id and TIMED or not."""
        (_, teach), (_, fast) = self.encoders()
        end = self.pure.row_end
        assert end == self.fast.row_end
        steps = 0
        for timed in (True, False):
            for window in windows:
                for budget in budgets:
                    for first in previous:
                        row, prev = 0, first
                        while row < end:
                            stop = min(end, row + window)
                            want = teach(row, stop, budget, timed, prev)
                            assert fast(row, stop, budget, timed, prev) == want, (timed, window, budget, row)
                            row, prev = want[1], want[2]
                            steps += 1
        return steps

    def assert_same_messages(self, ids=(None, 0, 7, M), expires=(None, 0, 1234, M), now=None):
        """Both per-entry encoders give the same message for every live row and
        variant, and the message is the one `Encoder.encode_entry` gives."""
        (encode, _), (fast, _) = self.encoders()
        table = self.pure
        reference = codec.Encoder()
        reference.encode(table_define(table, 1))
        on_time = now is None  # rates read on the table's clock, as `wire_values` reads them
        now = table.now_tick() if now is None else now
        rows = list(table.live_rows())
        for row in rows:
            for update_id in ids:
                for expire in expires:
                    want = encode(update_id, expire, now, row)
                    assert fast(update_id, expire, now, row) == want, (row, update_id, expire)
                    if on_time and all(v is None or 0 <= v <= M for v in (update_id, expire)):
                        entry = table.entry(row)
                        assert want == reference.encode_entry(
                            update_id, expire, entry.key, entry.wire_values()
                        )
        return len(rows)


def test_the_compiled_encoders_stand_in_only_when_built(compiled, monkeypatch):
    table = StickTable(ALL_SPEC, task.Clock())
    assert table.wire_encoder().compiled and table.wire_teach_encoder().compiled
    monkeypatch.setenv("MINILB_PURE", "1")
    table = StickTable(ALL_SPEC, task.Clock())
    assert not hasattr(table.wire_encoder(), "compiled")
    assert not hasattr(table.wire_teach_encoder(), "compiled")
    monkeypatch.delenv("MINILB_PURE")
    other = TableSpec(BUILTIN, "str", "str", "string", 32, 10, store=(StoreItem("gpc0"),))
    assert StickTable(other, task.Clock()).wire_teach_encoder() is None
    assert StickTable(other, task.Clock()).wire_encoder() is None


def _fill_every_type(table: StickTable, values: list[int]) -> None:
    """One entry per value: every counter at that value (u64 ones at the u64 edge of
    the same rank), every rate with that value as age, current and previous count."""
    for i, value in enumerate(values):
        v64 = U64_EDGES[i % len(U64_EDGES)]
        remote = {name: value for name in U32_NAMES}
        remote.update({name: v64 for name in U64_NAMES})
        remote.update({name: (value, value, M - value) for name in RATE_NAMES})
        row = table.apply_remote(0x0A000000 + i * 7919, remote, None)
        table.set(row, "conn_cur", value)  # not learned ("local"), but sent


def test_every_column_type_and_varint_length_gives_the_same_bytes(compiled):
    twin = Twin(ALL_SPEC)
    twin.do(_fill_every_type, U32_EDGES)
    assert twin.assert_same_messages() == len(U32_EDGES)
    assert twin.assert_same_teach() > 0


def test_rates_at_their_period_edges(compiled):
    """Rates counted at every distance from a period boundary (and never counted,
    and counted about 2**31 ms ago), read on the current clock."""
    twin = Twin(ALL_SPEC)
    for name, period in PERIODS.items():
        for i, ago in enumerate((0, 1, period - 1, period, period + 1, 2 * period - 1, 2 * period)):
            row = twin.do(StickTable.get_or_create, hash((name, i)) & M)
            twin.do(StickTable.add, row, name, i + 1)
            twin.advance(ago / 1000)
    row = twin.do(StickTable.get_or_create, 0x0B000000)
    twin.do(StickTable.add, row, "http_req_rate", 3)
    twin.advance(2**31 / 1000 + 0.5)  # ages past the signed half of the clock
    twin.do(StickTable.get_or_create, 0x0B000001)  # never counted: tick 0
    assert twin.assert_same_messages() == 7 * len(PERIODS) + 2
    twin.assert_same_teach(windows=(10_000,))


def test_deleted_and_reused_rows_and_key_zero(compiled):
    """Freed rows in the middle (their key reset to 0), rows freed then reused by
    other keys, and a live key 0 (0.0.0.0), which a free row's key also reads as."""
    twin = Twin(ALL_SPEC)
    rows = [twin.do(StickTable.get_or_create, 0x0A000000 + i) for i in range(40)]
    for i, row in enumerate(rows):
        twin.do(StickTable.set, row, "gpc0", i * 1000)
        twin.do(StickTable.touch_local, row)
    for row in rows[5:15] + rows[20:21] + rows[-3:]:
        assert twin.do(StickTable.remove, row)
    for key in (0x0C000000, 0x0C000001, 0):  # reuse freed rows, one with key 0
        row = twin.do(StickTable.get_or_create, key)
        twin.do(StickTable.touch_local, row)
    assert twin.pure.lookup(0) is not None
    twin.assert_same_teach()
    twin.assert_same_messages(ids=(None, 3), expires=(None, 5))


def test_expired_expiring_and_unlimited_entries(compiled):
    """The remaining expiry of every entry (TIMED): expired, expiring within the next
    milliseconds, far, around the signed half of the clock, with the clock about to
    wrap around 2**32 ms; and a table without expire (no expiry at all)."""
    for spec in (ALL_SPEC, attrs.evolve(ALL_SPEC, expire=None)):
        twin = Twin(spec, start=(2**32 - 20) / 1000)  # the tick wraps during the test
        for i, expire_ms in enumerate((1, 5, 10, 30, 1000, 2**31 - 1, None)):
            twin.do(StickTable.apply_remote, 0x0A000000 + i, {"gpc0": i}, expire_ms)
            twin.advance(0.004)
        twin.advance(0.008)  # the first few have expired (not purged yet)
        # expiring 2**31 ms from now or later reads as already expired (sent as 0)
        for i, expire_ms in enumerate((2**31 - 1, 2**31, 2**31 + 1, M)):
            twin.do(StickTable.apply_remote, 0x0B000000 + i, {"gpc0": i}, expire_ms)
        assert len(twin.pure) == 11
        twin.assert_same_teach()
        twin.assert_same_messages(ids=(None,), expires=(None, 0))


def test_update_ids_previous_and_wraparound(compiled):
    """Local ids with gaps and runs (INCREMENTAL), ids wrapping past 2**32, remote ids,
    entries never numbered (id 0), and `previous` of any int: a walk that meets no
    live entry gives back the very previous it was given."""
    twin = Twin(ALL_SPEC, sync=True)
    twin.pure.update = twin.fast.update = M - 6  # the next ids wrap around
    rows = [twin.do(StickTable.get_or_create, 0x0A000000 + i) for i in range(12)]
    for row in rows:
        twin.do(StickTable.touch_local, row)
    twin.do(StickTable.touch_local, rows[4])  # a gap, and the last id
    twin.do(StickTable.apply_remote, 0x0D000000, {"gpc0": 1}, None)  # a remote id
    twin.assert_same_teach(previous=(None, 0, M, M - 7, 2**40 + 5, -2))
    (_, teach), (_, fast) = twin.encoders()
    twin.do(StickTable.remove, rows[0])
    big = 2**40 + 5
    assert teach(0, 1, 10, True, big) == fast(0, 1, 10, True, big) == (b"", 1, big, 0)
    assert fast(0, 1, 10, True, big)[2] is big

    unnumbered = Twin(ALL_SPEC, sync=False)  # nothing numbers local changes
    for i in range(5):
        row = unnumbered.do(StickTable.get_or_create, 0x0A000000 + i)
        unnumbered.do(StickTable.touch_local, row)
    unnumbered.assert_same_teach(previous=(None, M))


def test_per_entry_encoder_arguments_of_any_int_and_rows_from_the_end(compiled):
    """`encode`'s ids, expiry and clock are taken modulo 2**32 (negative ones too) as
    the generated code's ``& 0xFFFFFFFF``; a negative row counts from the end; a row
    past the end is an IndexError on both."""
    twin = Twin(ALL_SPEC)
    twin.do(_fill_every_type, U32_EDGES[:6])
    (encode, _), (fast, _) = twin.encoders()
    now = twin.pure.now_tick()
    for update_id in (None, -1, 2**32 + 3, 2**70):
        for expire in (None, -5, 2**33):
            for row in (0, 5, -1, -6):
                want = encode(update_id, expire, now, row)
                assert fast(update_id, expire, now, row) == want
    assert fast(None, None, -(2**40) - 1, 2) == encode(None, None, -(2**40) - 1, 2)
    for row in (twin.pure.row_end + 1000, -(twin.pure.row_end + 1000)):
        with pytest.raises(IndexError):
            encode(None, None, now, row)
        with pytest.raises(IndexError):
            fast(None, None, now, row)


def test_a_walk_past_the_arrays_is_an_index_error_on_both(compiled):
    twin = Twin(ALL_SPEC)
    twin.do(_fill_every_type, U32_EDGES[:3])
    (_, teach), (_, fast) = twin.encoders()
    end = twin.pure.row_end + 5
    for impl in (teach, fast):
        with pytest.raises(IndexError):
            impl(0, end, 10_000, True, None)
    # rows before 0 are read from the end, never a live entry's: walked over
    assert teach(-3, 2, 10, True, None) == fast(-3, 2, 10, True, None)
    assert fast(-3, 2, 10, True, None)[1:] == (2, twin.pure.update_id_of(1), 2)


_keys = st.one_of(st.sampled_from([0, 1, 0x0A000000, M]), st.integers(0, M))
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("create"), _keys, st.integers(0, M), st.integers(0, 2**64 - 1), st.integers(0, 40)),
        st.tuples(
            st.just("remote"),
            _keys,
            st.integers(0, M),
            st.tuples(st.integers(0, M), st.integers(0, M), st.integers(0, M)),
            st.one_of(st.none(), st.integers(1, 2**31 - 1)),
        ),
        st.tuples(st.just("remove"), st.integers(0, 200)),
        st.tuples(st.just("touch"), st.integers(0, 200)),
        st.tuples(st.just("advance"), st.integers(0, 700_000)),
        st.tuples(st.just("expire"), st.integers(1, 20)),
    ),
    max_size=80,
)


def _apply(table: StickTable, op: tuple) -> object:
    kind = op[0]
    if kind == "create":
        _, key, gpc0, bytes_in, hits = op
        row = table.get_or_create(key)
        if row is not None:
            table.set(row, "gpc0", gpc0)
            table.set(row, "bytes_in_cnt", bytes_in)
            table.set(row, "conn_cur", hits)
            table.add(row, "http_req_rate", hits)
            table.touch_local(row)
        return row
    if kind == "remote":
        _, key, gpc0, rate, expire_ms = op
        return table.apply_remote(key, {"gpc0": gpc0, "http_req_rate": rate}, expire_ms)
    if kind == "expire":
        return table.expire_step(op[1])
    rows = sorted(table.rows())
    if not rows:
        return None
    row = rows[op[1] % len(rows)]
    if kind == "remove":
        return table.remove(row)
    table.touch_local(row)
    return row


@settings(max_examples=60)
@given(
    ops=_ops,
    steps=st.lists(st.integers(0, 3000), max_size=8),
    window=st.integers(1, 60),
    budget=st.integers(1, 50),
    previous=st.one_of(st.none(), st.integers(0, M)),
    ids=st.tuples(st.one_of(st.none(), st.integers(0, M)), st.one_of(st.none(), st.integers(0, M))),
)
def test_random_tables_encode_alike(ops, steps, window, budget, previous, ids):
    """Random creations, learned entries, removals, expiry, purges (a table of 48),
    touches and clock moves: both teach encoders give the same steps (bytes, row, previous,
    count), for a full walk and for arbitrary windows, and both per-entry encoders the
    same messages."""
    with pytest.MonkeyPatch.context() as mp:  # (a fixture would be shared by the examples)
        choose("compiled", "teach", TEACH_API, mp)
    twin = Twin(SMALL_SPEC)
    for op in ops:
        if op[0] == "advance":
            twin.advance(op[1] / 1000)
        else:
            twin.do(_apply, op)
    (encode, teach), (fast_encode, fast_teach) = twin.encoders()
    end = twin.pure.row_end
    for timed in (True, False):
        row, prev = 0, previous
        while row < end:
            stop = min(end, row + window)
            want = teach(row, stop, budget, timed, prev)
            assert fast_teach(row, stop, budget, timed, prev) == want
            row, prev = want[1], want[2]
        for start in steps:  # walks from anywhere, time moving between them
            start %= end + 1
            stop = min(end, start + window)
            assert fast_teach(start, stop, budget, timed, prev) == teach(start, stop, budget, timed, prev)
            twin.advance(0.37)
    now = twin.pure.now_tick()
    for row in twin.pure.live_rows():
        assert fast_encode(ids[0], ids[1], now, row) == encode(ids[0], ids[1], now, row)
