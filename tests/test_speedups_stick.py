"""The compiled stick-table hot paths (minilb/_speedups/stick.pyx) against the
generated Python ones: the same random traffic on two tables, one of each, gives the
same return values and the same table state after every step."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from minilb.stick import table as table_module
from minilb.stick.table import StickTable
from minilb.timebase import ManualClock
from tests.support.speedups import compiled as compiled_module
from tests.support.speedups import needs
from tests.support.stick import raw_state, spec

COMPILED = compiled_module("stick")
pytestmark = needs("stick")

STORED = "conn_cur,conn_cnt,conn_rate(1s),http_req_cnt,http_req_rate(2s),gpc0"

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("track"), st.integers(0, 11), st.booleans()),
        st.tuples(st.just("release"), st.integers(0, 11), st.booleans()),
        st.tuples(st.just("read"), st.integers(0, 11)),
        # fractions of a millisecond, a few ms, past a period, past the expiry
        st.tuples(st.just("advance"), st.sampled_from([0.0002, 0.0007, 0.003, 0.4, 1.3, 2.5, 7.0])),
        st.tuples(st.just("expire"), st.integers(1, 4)),
    ),
    max_size=80,
)


def make(compiled: bool, sync: bool, size: int, stored: str) -> tuple[StickTable, ManualClock]:
    saved = table_module._speedups
    table_module._speedups = COMPILED if compiled else None
    try:
        clock = ManualClock(1_000.0005)
        table = StickTable(spec(size=size, expire=5000, stored=stored), clock)
        if sync:
            table.sync = True  # numbered for the peers (rebuilds the hot path)
    finally:
        table_module._speedups = saved
    return table, clock


def run(ops, sync: bool, size: int = 8, stored: str = STORED) -> None:
    pure, pure_clock = make(False, sync, size, stored)
    fast, fast_clock = make(True, sync, size, stored)
    assert not isinstance(pure._rate_readers["http_req_rate"], type(fast._rate_readers["http_req_rate"]))
    held: dict[int, list[int]] = {}  # key -> rows tracked (the same in both tables)
    for op in ops:
        if op[0] == "track":
            key = 0x0A000000 + op[1]
            a = pure._track(key, op[2])
            b = fast._track(key, op[2])
            assert a == b
            if a is not None:
                held.setdefault(key, []).append(a)
        elif op[0] == "release":
            rows = held.get(0x0A000000 + op[1])
            if rows:
                row = rows.pop()
                pure.release(row, op[2])
                fast.release(row, op[2])
        elif op[0] == "read":
            row = pure.lookup(0x0A000000 + op[1])
            assert row == fast.lookup(0x0A000000 + op[1])
            if row is not None:
                for name in ("http_req_rate", "conn_rate"):
                    if name in pure._rate_readers:
                        assert pure._rate_readers[name](row) == fast._rate_readers[name](row)
        elif op[0] == "advance":
            pure_clock.advance(op[1])
            fast_clock.advance(op[1])
        else:
            assert pure.expire_step(op[1]) == fast.expire_step(op[1])
        assert raw_state(pure) == raw_state(fast)


@settings(max_examples=300, deadline=None)
@given(OPS, st.booleans())
def test_the_compiled_track_and_readers_keep_the_same_table_as_the_generated_ones(ops, sync):
    run(ops, sync)


@settings(max_examples=100, deadline=None)
@given(OPS)
def test_the_same_with_only_the_request_counters_stored(ops):
    run(ops, False, stored="http_req_rate(10s),gpc0,http_req_cnt")


def test_a_rate_past_its_period_and_a_full_table_take_the_same_path():
    ops = [("track", k, True) for k in range(10)]
    ops += [("advance", 2.5), ("read", 3), ("track", 3, True), ("read", 3), ("advance", 7.0), ("expire", 4)]
    ops += [("track", 11, False), ("read", 11)]
    run(ops, True)
    run(ops, False)


def test_counters_wrap_at_32_bits_as_the_generated_code_does():
    for compiled in (False, True):
        table, _ = make(compiled, False, 8, STORED)
        row = table._track(7, True)
        table.columns["http_req_cnt"].arrays[0][row] = 0xFFFFFFFF
        table.columns["http_req_rate"].arrays[1][row] = 0xFFFFFFFF
        table.columns["conn_cnt"].arrays[0][row] = 0xFFFFFFFF
        table._track(7, True)
        assert table.columns["http_req_cnt"].arrays[0][row] == 0
        assert table.columns["http_req_rate"].arrays[1][row] == 0
        assert table.columns["conn_cnt"].arrays[0][row] == 0


def test_the_compiled_rate_fetch_answers_as_the_python_one():
    from minilb.rules.txn import Session
    from minilb.stick import fetches, tracking

    rates, other = make(True, False, 8, STORED)[0], make(True, False, 8, "gpc0,conn_rate(1s)")[0]
    no_rate = make(True, False, 8, "gpc0")[0]
    for slot in range(3):
        pure = fetches._make_sc_rate("http_req_rate", slot, compiled=False)
        fast = fetches._make_sc_rate("http_req_rate", slot)
        assert fast is not pure and not isinstance(fast, type(pure))
        sessions = [Session(src="10.0.0.1") for _ in range(4)]
        tracking.track(sessions[1], slot, rates, 5)
        tracking.track(sessions[1], slot, rates, 5)  # the slot is taken: nothing more
        tracking.track(sessions[2], slot, no_rate, 5)
        tracking.track(sessions[3], slot, other, 6)
        rates._track(6, True)
        for sess in sessions:
            for table in (None, rates, other, no_rate):
                assert pure(sess, None, table) == fast(sess, None, table)
            assert pure(sess, None) == fast(sess, None)
        assert fast(sessions[1], None) == slot + 1  # key 5 counted once per slot
        assert fast(sessions[3], None, rates) == slot + 1
        assert fast(sessions[0], None) is None
