"""HAProxy's frequency counter arithmetic, against hand-computed values."""

from hypothesis import given
from hypothesis import strategies as st

from minilb.stick import counters

P = 10_000


def test_worked_example_from_peers_wire_8_2():
    # a peer sent age=2000 curr=5 prev=10 for http_req_rate(10s), received at t=1.004 s
    tick = counters.from_age(2000, 1004)
    assert counters.read(tick, 5, 10, 5018, P) == 8  # (10*3986 + 5*10000) // 10000
    assert counters.read(tick, 5, 10, 11008, P) == 3  # remain 7996, past=5: 39980 // 10000
    assert counters.read(tick, 5, 10, 18024, P) == 0  # remain 981 -> 4905 // 10000
    # re-sent one second later: the age grew by what elapsed
    assert counters.age_of(tick, 2006) == 3002


def test_first_increment_starts_the_period_now():
    # a fresh counter (tick 0) seen at t=100000: two periods passed, so both reset
    assert counters.increment(0, 0, 0, 100_000, P) == (100_000, 1, 0)


def test_increment_within_period_only_grows_current():
    assert counters.increment(100_000, 4, 7, 109_999, P) == (100_000, 5, 7)


def test_increment_at_exact_period_boundary_rotates():
    # now - tick == period: the current period becomes the previous one
    assert counters.increment(100_000, 5, 7, 110_000, P) == (110_000, 1, 5)


def test_increment_one_and_a_half_periods_later_keeps_previous():
    assert counters.increment(110_000, 3, 9, 125_000, P) == (120_000, 1, 3)


def test_increment_two_periods_later_resets_previous():
    # tick + period is itself a full period old: prev dropped, tick = now
    assert counters.increment(100_000, 5, 7, 120_000, P) == (120_000, 1, 0)
    assert counters.increment(100_000, 5, 7, 120_001, P) == (120_000, 1, 0)  # low bit cleared


def test_increment_by_several_events():
    assert counters.increment(100_000, 5, 0, 100_001, P, 10) == (100_000, 15, 0)


def test_read_weights_previous_period_by_remaining_time():
    # tick 120000, curr 1, prev 3, read at 125000: remain 5000 -> (3*5000 + 1*10000)//10000 = 2
    assert counters.read(120_000, 1, 3, 125_000, P) == 2
    # at the very start of the period the whole previous count is seen
    assert counters.read(120_000, 0, 3, 120_000, P) == 3
    # just before the end only the current count remains
    assert counters.read(120_000, 4, 3, 129_999, P) == 4  # (3*1 + 40000)//10000


def test_read_after_the_period_ended_uses_current_as_previous():
    # age 15000: remain -5000 + 10000 = 5000, past = curr = 6 -> 30000 // 10000 = 3
    assert counters.read(100_000, 6, 50, 115_000, P) == 3
    # age exactly 2 periods: remain 0 -> 0 for a big count
    assert counters.read(100_000, 6, 50, 120_000, P) == 0
    # more than 2 periods: everything is too old
    assert counters.read(100_000, 6, 50, 120_001, P) == 0


def test_read_anti_flapping_for_low_rates():
    # curr == 0 and past <= 1: the past is reported whole, not weighted
    assert counters.read(100_000, 0, 1, 109_000, P) == 1
    assert counters.read(100_000, 1, 0, 119_999, P) == 1  # rotated: past=1, curr=0
    assert counters.read(100_000, 1, 0, 120_000, P) == 1  # remain 0 but still anti-flapped
    assert counters.read(100_000, 2, 0, 119_999, P) == 0  # past=2 is weighted: 2*1 // 10000


def test_set_value_like_the_cli():
    assert counters.set_value(7, 123_457) == (123_457, 7, 0)
    assert counters.read(123_457, 7, 0, 123_457 + 4000, P) == 7


def test_clock_wrap_around_32_bits():
    tick = 0xFFFF_FF00
    now = 0x0000_0100  # 512 ms later, after the wrap
    assert counters.increment(tick, 2, 0, now, P) == (tick, 3, 0)
    assert counters.read(tick, 3, 4, now, P) == (4 * (P - 512) + 3 * P) // P


@given(
    st.integers(0, 2**32 - 1),
    st.integers(0, 1000),
    st.integers(0, 1000),
    st.integers(0, 3 * P),
    st.integers(1, 100_000),
)
def test_read_never_exceeds_the_window_total(tick, curr, prev, age, period):
    now = (tick + age) & 0xFFFFFFFF
    assert 0 <= counters.read(tick, curr, prev, now, period) <= curr + prev


@given(st.lists(st.integers(0, 3000), min_size=1, max_size=50))
def test_increment_keeps_tick_even_and_counts_every_event_of_the_window(gaps):
    tick = curr = prev = 0
    now = 1_000_000
    for gap in gaps:
        now += gap
        tick, curr, prev = counters.increment(tick, curr, prev, now, 1000)
        assert tick % 2 == 0
        assert 0 <= (now - tick) & 0xFFFFFFFF < 1000
    assert curr >= 1
