"""StickTable: keys, every data type, LRU purge, expiry, tracking refs, update ids."""

import itertools

import pytest
from twisted.internet.task import Clock

from minilb.stick.datatypes import DATA_TYPES
from minilb.stick.table import InvalidKey, StickTable, _s32
from tests.support.stick import spec

ALL = (
    "server_id,gpt0,gpc0,gpc0_rate(1s),conn_cnt,conn_rate(2s),conn_cur,sess_cnt,sess_rate(3s),"
    "http_req_cnt,http_req_rate(4s),http_err_cnt,http_err_rate(5s),bytes_in_cnt,bytes_in_rate(6s),"
    "bytes_out_cnt,bytes_out_rate(7s),gpc1,gpc1_rate(8s),server_key,http_fail_cnt,http_fail_rate(9s)"
)


def make(clock=None, sync=True, **kw):
    clock = clock or Clock()
    if clock.seconds() == 0:
        clock.advance(1000)
    table = StickTable(spec(**kw), clock)
    table.sync = sync
    return table, clock


# --------------------------------------------------------------------------- keys


def test_ip_keys_normalise_from_text_bytes_int_and_mapped_ipv6():
    t, _ = make(key_type="ip")
    assert t.normalize_key("10.0.0.1") == 0x0A000001
    assert t.normalize_key(b"\x0a\x00\x00\x01") == 0x0A000001
    assert t.normalize_key(0x1_0A000001) == 0x0A000001
    assert t.normalize_key("::ffff:10.0.0.1") == 0x0A000001
    assert t.key_from_sample("10.0.0.1") == 0x0A000001
    assert t.key_to_text(0x0A000001) == "10.0.0.1"
    assert t.key_to_bytes(0x0A000001) == b"\x0a\x00\x00\x01"
    for bad in ("::1", "10.0.0.256", "abc"):
        with pytest.raises(InvalidKey):
            t.normalize_key(bad)
    with pytest.raises(InvalidKey):
        t.parse_cli_key("::ffff:10.0.0.1")


def test_ipv6_keys():
    t, _ = make(key_type="ipv6")
    assert t.normalize_key("::1") == b"\0" * 15 + b"\1"
    assert t.normalize_key("1.2.3.4") == b"\0" * 10 + b"\xff\xff\x01\x02\x03\x04"
    assert t.key_to_text(t.normalize_key("2001:db8::1")) == "2001:db8::1"
    with pytest.raises(InvalidKey):
        t.parse_cli_key("1.2.3.4")


def test_integer_keys_keep_low_32_bits_and_cli_is_strict():
    t, _ = make(key_type="integer")
    assert t.normalize_key(5) == 5
    assert t.normalize_key(2**32 + 7) == 7
    assert t.normalize_key(-1) == 0xFFFFFFFF
    assert t.parse_cli_key("4294967295") == 0xFFFFFFFF
    for bad in ("4294967296", "-1", "abc", ""):
        with pytest.raises(InvalidKey):
            t.parse_cli_key(bad)
    # HAProxy walks integer keys in memory (little-endian) order
    for k in (1, 256, 2, 5):
        t.get_or_create(k)
    assert [t._keys[r] for r in t.sorted_rows()] == [256, 1, 2, 5]


def test_string_keys_truncate_to_len_and_dump_escaped():
    t, _ = make(key_type="string", length=8)
    assert t.key_len == 9
    assert t.normalize_key("abcdefghijk") == b"abcdefgh"
    assert t.normalize_key(b"ab\0cd") == b"ab"
    assert t.key_to_text(b"a b=c") == "a\\ b\\=c"
    assert t.key_to_text(b"x\\y\x01") == "x\\\\y\\x01"


def test_binary_keys_pad_and_truncate():
    t, _ = make(key_type="binary", length=6)
    assert t.normalize_key(b"abc") == b"abc\0\0\0"
    assert t.normalize_key(b"abcdefgh") == b"abcdef"
    assert t.key_to_text(b"abc\0\0\0") == "616263000000"
    # haproxy 2.6.12, "track-sc0 str(ab\x01z)" in a "binary len 6" table: key=6162017A0000
    assert t.key_to_text(t.normalize_key(b"ab\x01z")) == "6162017A0000"


# --------------------------------------------------------------------------- data types


def test_every_data_type_is_stored_and_read_back():
    arrays = "server_id,gpt(2),gpc(3),gpc_rate(2,10s)"
    legacy = ("server_id,", "gpt0,", "gpc0,", "gpc0_rate(1s),", "gpc1,", "gpc1_rate(8s),")
    rest = ALL
    for name in legacy:
        rest = rest.replace(name, "")
    t, clock = make(key_type="string", stored=arrays + "," + rest)
    row = t.get_or_create(t.normalize_key("k"))
    names = {dt.name for dt in DATA_TYPES} - {"gpt0", "gpc0", "gpc0_rate", "gpc1", "gpc1_rate"}
    assert set(t.columns) == names
    for name, col in t.columns.items():
        for idx in range(col.count):
            value = "s1" if name == "server_key" else 40 + idx
            assert t.set(row, name, value, idx)
            assert t.get(row, name, idx) == value, (name, idx)
    assert t.get(row, "gpc", 2) == 42
    assert t.get(row, "gpc", 3) is None  # beyond the array
    assert t.get(row, "gpc0") is None  # not stored
    assert not t.set(row, "gpc0", 1)


def test_integer_widths_wrap():
    t, _ = make(stored="gpc0,bytes_in_cnt,server_id")
    row = t.get_or_create(1)
    t.set(row, "gpc0", 2**32 - 1)
    t.add(row, "gpc0")
    assert t.get(row, "gpc0") == 0
    t.set(row, "bytes_in_cnt", 2**64 - 1)
    t.add(row, "bytes_in_cnt", 2)
    assert t.get(row, "bytes_in_cnt") == 1
    t.set(row, "server_id", 2**32 - 3)
    assert t.get(row, "server_id") == -3


def test_rates_follow_the_clock():
    t, clock = make(stored="http_req_rate(10s)")
    row = t.get_or_create(1)
    for _ in range(3):
        t.add(row, "http_req_rate")
    assert t.get(row, "http_req_rate") == 3
    clock.advance(15)  # 1.5 periods after the first event: the 3 are "previous", half left
    assert t.get(row, "http_req_rate") == 1  # 3 * ~5000 // 10000
    clock.advance(10)
    assert t.get(row, "http_req_rate") == 0


# --------------------------------------------------------------------------- size, purge, nopurge


def test_full_table_purges_least_recently_used_untracked_batch():
    t, clock = make(size=300, stored="gpc0")
    for i in range(300):
        t.touch_local(t.get_or_create(i))
        clock.advance(0.001)
    t.ref(t.lookup(0))  # tracked: never purged
    t.touch_local(t.lookup(1))  # recently used again
    row = t.get_or_create(1000)
    assert row is not None
    # HAProxy frees (size >> 8) + 1 = 2 of the oldest untracked entries
    assert len(t) == 299
    assert t.lookup(0) is not None
    assert t.lookup(1) is not None
    assert t.lookup(2) is None and t.lookup(3) is None
    assert t.lookup(4) is not None


def test_nopurge_refuses_new_entries_when_full():
    t, _ = make(size=2, nopurge=True)
    assert t.get_or_create(1) is not None
    assert t.get_or_create(2) is not None
    assert t.get_or_create(3) is None
    assert t.get_or_create(1) is not None  # existing keys still found


def test_full_table_of_tracked_entries_refuses():
    t, _ = make(size=2)
    for k in (1, 2):
        t.ref(t.get_or_create(k))
    assert t.get_or_create(3) is None


def test_freed_rows_are_reused_with_clean_data():
    t, _ = make(size=10, stored="gpc0,server_key")
    row = t.get_or_create(1)
    t.set(row, "gpc0", 9)
    t.set(row, "server_key", "s1")
    assert t.remove(row)
    again = t.get_or_create(2)
    assert again == row
    assert t.get(again, "gpc0") == 0 and t.get(again, "server_key") is None


# --------------------------------------------------------------------------- expiry


def test_entries_expire_after_their_last_touch():
    t, clock = make(expire=10_000, stored="gpc0")
    a = t.get_or_create(1)
    t.touch_local(a)
    clock.advance(4)
    t.touch_local(t.get_or_create(2))
    assert t.next_deadline() == pytest.approx(clock.seconds() + 6)
    clock.advance(5)
    t.touch_local(a)  # refreshed: now expires at +10 s
    assert t.expire_step(100) == 0
    assert t.next_deadline() == pytest.approx(clock.seconds() + 5)  # entry 2, touched at +4
    clock.advance(4.999)
    assert t.expire_step(100) == 0
    clock.advance(0.001)
    assert t.expire_step(100) == 1
    assert t.lookup(2) is None and t.lookup(1) is not None
    assert t.entry(a).expire_in() == 5000


def test_tracked_entry_outlives_its_expiry_and_goes_when_released():
    # haproxy 2.6: a tracked entry is never removed, whatever its expiry says; once the
    # last tracker lets go of it after that expiry, it is removed at once
    # (stksess_kill_if_expired); show table meanwhile says exp=0
    t, clock = make(expire=1000)
    row = t.get_or_create(1)
    t.ref(row)
    clock.advance(50)
    assert t.expire_step(10) == 0  # met at the head, expired, tracked: detached, kept
    assert t.lookup(1) == row and t.entry(row).expire_in() == 0
    assert t._lru_head == -1 and t.next_deadline() is None  # nothing left to wait for
    t.release(row)
    assert t.lookup(1) is None and len(t) == 0


def test_release_does_not_refresh_the_expiry():
    t, clock = make(expire=10_000, stored="gpc0,http_req_cnt")
    row = t.track_key(1, True)
    clock.advance(3)
    t.release(row, conn_cur=True)  # conn_cur is not stored: no touch
    assert t.entry(row).expire_in() == 7000
    clock.advance(6.999)
    assert t.expire_step(10) == 0
    clock.advance(0.001)
    assert t.expire_step(10) == 1


def test_release_touches_when_conn_cur_is_stored():
    t, clock = make(expire=10_000, stored="conn_cur,http_req_cnt")
    row = t.track_key(1, True)
    clock.advance(3)
    t.release(row, conn_cur=True)  # conn_cur decremented: the entry is touched
    assert t.get(row, "conn_cur") == 0 and t.entry(row).expire_in() == 10_000
    # the same touch keeps an entry whose expiry passed while it was tracked
    row = t.track_key(2, True)
    clock.advance(11)
    t.expire_step(10)
    t.release(row, conn_cur=True)
    assert t.lookup(2) == row and t.entry(row).expire_in() == 10_000


def test_release_without_conn_cur_touches_nothing_even_when_stored():
    t, clock = make(expire=10_000, stored="conn_cur,http_req_cnt")
    row = t.track_key(1, True)
    t.ref(row)  # a second holder (the CLI's set table) releases without conn_cur
    clock.advance(3)
    t.release(row)
    assert t.get(row, "conn_cur") == 1 and t.entry(row).expire_in() == 7000


def test_tracking_touches_and_keeps_expiry_order():
    t, clock = make(expire=10_000, stored="http_req_cnt")
    for k in (1, 2, 3):
        t.touch_local(t.get_or_create(k))
        clock.advance(1)
    row = t.track_key(1, True)  # touched at +3 s: expires after 3, before what follows
    clock.advance(1)
    t.touch_local(t.lookup(2))  # touched at +4 s
    clock.advance(1)
    t.release(row, conn_cur=True)  # no touch: expiry order 3, 1, 2
    assert t.next_deadline() == pytest.approx(clock.seconds() + 7)  # entry 3, touched at +2
    order = []
    for _ in range(3):
        clock.advance(t.next_deadline() - clock.seconds())
        assert t.expire_step(10) == 1
        order += [k for k in (1, 2, 3) if t.lookup(k) is None and k not in order]
    assert order == [3, 1, 2] and len(t) == 0


def test_tracked_entry_passed_over_by_a_purge_returns_in_expiry_order():
    t, clock = make(size=3, expire=10_000, stored="gpc0")
    for k in (1, 2, 3):
        t.touch_local(t.get_or_create(k))
        clock.advance(0.001)
    first = t.lookup(1)
    t.ref(first)
    assert t.get_or_create(4) is not None  # full: 1 is tracked, 2 goes
    assert t.lookup(1) == first and t.lookup(2) is None
    t.release(first)  # back at the head, by its expiry
    assert t._lru_head == first
    assert t.get_or_create(5) is not None
    assert t.lookup(1) is None and t.lookup(3) is not None


def test_expire_step_is_bounded():
    t, clock = make(expire=1000, size=100)
    for k in range(50):
        t.get_or_create(k)
    clock.advance(2)
    assert t.expire_step(20) == 20
    assert t.expire_step(20) == 20
    assert t.expire_step(20) == 10
    assert t.next_deadline() is None


def test_table_without_expire_never_expires():
    t, clock = make()
    t.get_or_create(1)
    clock.advance(10**6)
    assert t.next_deadline() is None
    assert t.expire_step(10) == 0
    assert t.entry(t.lookup(1)).expire_in() == 0


def test_remote_entry_with_own_expiry_keeps_expiry_order():
    t, clock = make(expire=10_000)
    t.touch_local(t.get_or_create(1))
    t.apply_remote(2, {}, expire_ms=2000)
    assert t.next_deadline() == pytest.approx(clock.seconds() + 2)
    clock.advance(2)
    assert t.expire_step(10) == 1
    assert t.lookup(2) is None


# --------------------------------------------------------------------------- update ids


def ids(t, after=0):
    return [(uid, e.key) for uid, e in t.updates_after(after)]


def test_local_changes_get_increasing_ids_and_move_to_the_end():
    t, _ = make(stored="gpc0")
    for k in (1, 2, 3):
        t.touch_local(t.get_or_create(k))
    assert ids(t) == [(1, 1), (2, 2), (3, 3)]
    t.commit_update = 3  # all pushed: a new change renumbers
    t.touch_local(t.lookup(1))
    assert ids(t) == [(2, 2), (3, 3), (4, 1)]
    assert t.local_update == 4
    assert ids(t, 3) == [(4, 1)]
    assert ids(t, 4) == []


def test_pending_entry_keeps_its_id_when_others_follow():
    t, _ = make()
    for k in (1, 2):
        t.touch_local(t.get_or_create(k))
    # entry 1 (id 1) not pushed yet and entry 2 numbered after it: keeps id 1
    t.touch_local(t.lookup(1))
    assert ids(t) == [(1, 1), (2, 2)]
    # the newest entry is renumbered (twice per HTTP request in HAProxy)
    t.touch_local(t.lookup(2))
    assert ids(t) == [(1, 1), (3, 2)]


def test_apply_remote_uses_the_remote_half_and_is_not_a_local_change():
    t, clock = make(expire=60_000, stored="gpc0,http_req_rate(10s),gpc(2),conn_cur")
    t.touch_local(t.get_or_create(7))
    row = t.apply_remote(
        9, {"gpc0": 4, "http_req_rate": (2000, 5, 10), "gpc": (1, 2, 3), "conn_cur": 8, "bytes_in_cnt": 5}
    )
    assert t.entry(row).update_id == 2 + 2**31
    assert t.local_update == 1 and t.update == 2
    assert ids(t) == [(1, 7)]  # learned entries are not pushed as local changes
    assert t.get(row, "gpc0") == 4
    assert t.get(row, "gpc", 0) == 1 and t.get(row, "gpc", 1) == 2
    assert t.get(row, "conn_cur") == 0  # local type: ignored
    clock.advance(4.014)  # age 6014 as in the peers-wire worked example
    assert t.get(row, "http_req_rate") == 8
    # a second remote update of an entry already numbered keeps its id
    t.apply_remote(9, {"gpc0": 5})
    assert t.entry(row).update_id == 2 + 2**31
    assert t.get(row, "gpc0") == 5
    # a local change afterwards renumbers it into the local half
    t.touch_local(row)
    assert ids(t) == [(1, 7), (3, 9)]


def test_wire_values_round_trip_through_apply_remote():
    a, clock = make(stored="gpc0,http_req_rate(10s),gpc_rate(2,1s),server_key")
    row = a.get_or_create(1)
    a.set(row, "gpc0", 3)
    a.add(row, "http_req_rate", 4)
    a.add(row, "gpc_rate", 2, idx=1)
    a.set(row, "server_key", "s2")
    b = StickTable(a.spec, clock)
    brow = b.apply_remote(1, a.wire_values(row))
    assert b.values(brow) == a.values(row)


def test_updates_after_survives_changes_during_iteration():
    t, _ = make()
    for k in range(5):
        t.touch_local(t.get_or_create(k))
    t.commit_update = 5
    walk = t.updates_after(0)
    first = list(itertools.islice(walk, 2))
    t.touch_local(t.lookup(1))  # already yielded: renumbered to the end
    t.remove(t.lookup(2))
    rest = list(walk)
    assert [uid for uid, _ in first] == [1, 2]
    assert [(uid, e.key) for uid, e in rest] == [(4, 3), (5, 4), (6, 1)]


def test_update_ids_wrap_at_32_bits():
    t, _ = make()
    t.update = t.local_update = t.commit_update = 2**32 - 2
    for k in (1, 2, 3):
        t.touch_local(t.get_or_create(k))
    assert ids(t, 2**32 - 2) == [(2**32 - 1, 1), (0, 2), (1, 3)]


def test_entries_lists_every_entry():
    t, _ = make()
    for k in range(4):
        t.get_or_create(k)
    t.apply_remote(10, {})
    assert sorted(e.key for e in t.entries()) == [0, 1, 2, 3, 10]


def test_tables_without_peers_number_nothing():
    t, _ = make(sync=False)
    t.touch_local(t.get_or_create(1))
    t.apply_remote(2, {})
    assert t.update == 0 and t.local_update == 0
    assert ids(t) == []
    assert StickTable(spec(), Clock()).sync is False
    assert StickTable(spec("mypeers/t2"), Clock()).sync is True  # declared in a peers section


# --------------------------------------------------------------------------- invariants under random use

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

OPS = st.lists(
    st.tuples(
        st.sampled_from(["create", "touch", "track", "release", "remove", "advance", "expire", "remote"]),
        st.integers(0, 30),
    ),
    max_size=120,
)


def walk(t, head, nxt):
    rows = []
    row = head
    while row != -1:
        rows.append(row)
        row = nxt[row]
        assert len(rows) <= len(t) + 1, "cycle"
    return rows


@settings(max_examples=150, deadline=None)
@given(OPS)
def test_lists_stay_consistent_under_random_use(ops):
    clock = Clock()
    clock.advance(1000)
    t = StickTable(spec(size=12, expire=5000, stored="gpc0,http_req_rate(1s)"), clock)
    t.sync = True
    tracked: dict[int, int] = {}
    for op, k in ops:
        row = t.lookup(k)
        if op == "create":
            t.get_or_create(k)
        elif op == "touch" and row is not None:
            t.touch_local(row)
        elif op == "track":
            row = t.track_key(k, True)
            if row is not None:
                tracked[row] = tracked.get(row, 0) + 1
        elif op == "release" and tracked:
            row = next(iter(tracked))
            expired = _s32(t._exp[row] - (int(clock.seconds() * 1000) & 0xFFFFFFFF)) <= 0
            was = t._keys[row]
            t.release(row, conn_cur=True)
            tracked[row] -= 1
            if not tracked[row]:
                del tracked[row]
                # released after its expiry (no conn_cur here: no touch): removed at once
                assert (t.lookup(was) is None) == expired
        elif op == "remove" and row is not None:
            assert t.remove(row) == (row not in tracked)
        elif op == "advance":
            clock.advance(k * 0.2)
        elif op == "expire":
            t.expire_step(k + 1)
        elif op == "remote":
            t.apply_remote(k, {"gpc0": k})
        # every tracked entry is still there, with its reference count
        for row, refs in tracked.items():
            assert t.ref_count(row) == refs
            assert t.lookup(t._keys[row]) == row
        assert len(t) <= t.size
        live = sorted(t.rows())
        assert len(live) == len(t) == len({t._keys[r] for r in live})
        # the LRU list holds every live row once but the detached ones (tracked entries
        # an expiry or a purge passed over), in expiry order (every touch moves to the tail)
        lru = walk(t, t._lru_head, t._lru_next)
        assert walk(t, t._lru_tail, t._lru_prev) == lru[::-1]
        detached = [r for r in live if t._lru_prev[r] == -2]
        assert sorted(lru + detached) == live
        assert all(r in tracked for r in detached)
        exps = [t._exp[r] for r in lru]
        assert exps == sorted(exps)
        # the expiry deadline is the head's
        deadline = t.next_deadline()
        if lru:
            now = clock.seconds()
            remain = max(0, _s32(t._exp[lru[0]] - (int(now * 1000) & 0xFFFFFFFF)))
            assert deadline is not None
            assert abs(deadline - (now + remain / 1000)) < 1e-6
        else:
            assert deadline is None
        # the update list holds the numbered rows once, in id order
        upd = walk(t, t._upd_head, t._upd_next)
        assert sorted(upd) == sorted(r for r in live if t.update_id_of(r))
        seqs = [t._useq[r] for r in upd]
        assert seqs == sorted(seqs)
        assert len(set(seqs)) == len(seqs)
        ids_after = [uid for uid, _ in t.updates_after(0)]
        assert ids_after == [t.update_id_of(r) for r in upd if not t._flags[r] & 2]


REMOTE_PLAN = (
    ("gpc0", "u32", 0),
    ("conn_cur", "u32", 0),
    ("http_req_cnt", "u32", 0),
    ("http_req_rate", "rate", 0),
)
REMOTE_OPS = st.lists(
    st.tuples(
        st.integers(0, 15),  # key
        st.integers(0, 2**32 - 1),  # a counter value
        st.tuples(st.integers(0, 40_000), st.integers(0, 2**32 - 1), st.integers(0, 99)),  # a rate
        st.one_of(st.none(), st.integers(0, 20_000)),  # expire of a TIMED update
        st.integers(0, 3),  # seconds to advance first
        st.booleans(),  # a local track first
    ),
    max_size=60,
)


@settings(max_examples=100, deadline=None)
@given(REMOTE_OPS, st.booleans())
def test_remote_applier_stores_what_apply_remote_stores(ops, sync):
    """The generated fast path of the peers' receive side leaves a table exactly as
    `apply_remote` does: values, expiry, LRU order, update ids."""
    tables = []
    for _ in range(2):
        clock = Clock()
        clock.advance(1000)
        t = StickTable(spec(size=10, expire=5000, stored="gpc0,conn_cur,http_req_rate(1s)"), clock)
        t.sync = sync
        tables.append((t, clock))
    (slow, slow_clock), (fast, fast_clock) = tables
    apply = fast.remote_applier(REMOTE_PLAN)
    for key, counter, rate, expire, advance, track in ops:
        values = (("gpc0", counter), ("conn_cur", 7), ("http_req_cnt", counter), ("http_req_rate", rate))
        for t, clock in tables:
            clock.advance(advance)
            t.expire_step()
            if track:
                t.release(t.track_key(key, True))
        assert slow.apply_remote(key, dict(values), expire) == apply(key, values, expire)
        for name in ("_keys", "_exp", "_ref", "_flags", "_lru_prev", "_lru_next", "_useq", "_upd_prev"):
            assert getattr(slow, name)[: slow._rows] == getattr(fast, name)[: fast._rows], name
        assert (slow._lru_head, slow._lru_tail, slow.update) == (fast._lru_head, fast._lru_tail, fast.update)
        for row in slow.rows():
            assert slow.values(row) == fast.values(row)


# --------------------------------------------------------------------------- the generated hot paths

from minilb.stick import counters  # noqa: E402
from minilb.stick.table import ms_edge  # noqa: E402
from minilb.timebase import ManualClock  # noqa: E402


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.floats(0, 2e10, allow_nan=False) | st.integers(0, 2 * 10**13).map(lambda ms: ms / 1000),
        max_size=30,
    )
)
def test_the_cached_clock_reads_what_a_full_computation_reads(readings):
    # the tick is cached per millisecond; the bounds of a millisecond are exact, so
    # every reading (ms boundaries included, clock going back too) gives floor(s * 1000)
    clock = ManualClock()
    t = StickTable(spec(expire=1000), clock)
    for s in readings:
        clock._now = s
        assert t.now_tick() == int(s * 1000) & 0xFFFFFFFF
        ms = int(s * 1000)
        assert int(ms_edge(ms) * 1000) == ms and ms_edge(ms) <= s < ms_edge(ms + 1)


@settings(max_examples=300, deadline=None)
@given(
    st.integers(0, 2**32 - 1),  # tick
    st.integers(0, 2**32 - 1),  # curr
    st.integers(0, 2**32 - 1),  # prev
    st.integers(0, 2**33),  # now (ms)
    st.sampled_from([1, 1000, 10_000, 2**31 - 1]),  # period
)
def test_the_generated_rate_reader_reads_what_counters_read(tick, curr, prev, now, period):
    clock = ManualClock(now / 1000)
    t = StickTable(spec(stored=f"http_req_rate({period}ms)"), clock)
    row = t.get_or_create(1)
    col = t.column("http_req_rate")
    col.arrays[0][row], col.arrays[1][row], col.arrays[2][row] = tick, curr, prev
    assert t._rate_readers["http_req_rate"](row) == counters.read(tick, curr, prev, t.now_tick(), period)


def test_tracking_counters_wrap_at_32_bits():
    t, clock = make(stored="conn_cnt,http_req_cnt,http_req_rate(10s)")
    row = t.track_key(1, True)
    for name in ("conn_cnt", "http_req_cnt"):
        t.set(row, name, 2**32 - 1)
    col = t.column("http_req_rate")
    col.arrays[1][row] = 2**32 - 1
    t.track_key(1, True)
    assert t.get(row, "conn_cnt") == 0 and t.get(row, "http_req_cnt") == 0
    assert col.arrays[1][row] == 0
