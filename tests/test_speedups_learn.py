"""The compiled learner (``minilb_speedups.learn``) against the generated runner it
stands for (`codec.update_runner` with ``compiled=None``): for the same bytes and two
tables in the same state, the same return values and the same table afterwards, to
the last structure (every column, key dicts, free list, LRU and update lists, flags,
scalars), whatever the bytes: good, truncated, garbage, mixed with other messages."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import codec, varint
from minilb.peers import messages as m
from minilb.stick.datatypes import BY_BIT
from minilb.stick.table import LEARNED_EXPIRY_SLACK_MS, StickTable
from tests.support.peers import captured_streams, split_handshake
from tests.support.speedups import compiled, needs
from tests.support.stick import raw_state
from tests.test_peers_fastpath import FAST_BITS, SENT_BITS, STORED, sender_define

LEARN = compiled("learn")
pytestmark = needs("learn")


def make_table(
    clock: task.Clock,
    key_type: str = "ip",
    store=STORED,
    size: int = 100_000,
    expire: int | None = 30000,
    nopurge: bool = False,
    sync: bool = True,
) -> StickTable:
    spec = TableSpec(BUILTIN, "st", "st", key_type, 4, size, expire=expire, nopurge=nopurge, store=store)
    table = StickTable(spec, clock)
    table.sync = sync
    return table


def runner(table: StickTable, define: m.Define, compiled):
    run = codec.update_runner(define, table.remote_apply_source(codec.update_plan(define)), compiled)
    # the compiled one really is the compiled one (not the generated code it falls back on)
    assert (type(run).__name__ == "Runner") == (compiled is not None)
    return run


def twins(setup=None, start: float = 5000, **kwargs) -> tuple[StickTable, StickTable]:
    """Two tables in the same state (``setup(table)`` run on each, on a clock each
    reading ``start`` seconds)."""
    tables = []
    for _ in range(2):
        clock = task.Clock()
        clock.advance(start)
        table = make_table(clock, **kwargs)
        tables.append(table)
        if setup is not None:
            setup(table)
    assert raw_state(tables[0]) == raw_state(tables[1])
    return tuple(tables)


def skip_one(buf: bytes, pos: int) -> int | None:
    """Where the message at ``pos`` ends (None: incomplete or not decodable), as the
    generic decoder frames it."""
    if len(buf) - pos < 2:
        return None
    if not buf[pos + 1] & 0x80:
        return pos + 2
    try:
        length, start = varint.decode(buf, pos + 2, varint.MAX_BYTES_32)
    except varint.VarintError:
        return None
    return start + length if start + length <= len(buf) else None


def walk_both(data: bytes, define: m.Define, tables, max_count: int = codec.NO_LIMIT) -> list:
    """Both runners over ``data`` as a decoder calls them (after a stop, the message is
    skipped as the generic decoder would take it); every return value and the tables
    compared after each call.  Returns the calls' results."""
    runs = [runner(table, define, compiled) for table, compiled in zip(tables, (None, LEARN), strict=True)]
    buf = bytearray(data)
    pos, last_id, results = 0, 0, []
    while pos < len(buf):
        got = [run(buf, pos, len(buf), last_id, max_count) for run in runs]
        assert got[0] == got[1], (pos, got)
        assert raw_state(tables[0]) == raw_state(tables[1]), pos
        results.append(got[0])
        new_pos, last_id, count = got[0]
        if count:
            pos = new_pos
            continue
        nxt = skip_one(buf, pos)
        if nxt is None:
            break
        pos = nxt
    return results


def encode_updates(define: m.Define, items, with_define: bool = False) -> bytes:
    """``items``: (update id or None, expire or None, key, values in the DEFINE's order)."""
    encoder = codec.Encoder()
    encoder.current = define
    names = [BY_BIT[bit].name for bit in m.bits_of(define.data_types)]
    out = [codec.encode(define)] if with_define else []
    for update_id, expire, key, values in items:
        out.append(encoder.encode(m.Update(update_id, expire, key, tuple(zip(names, values, strict=True)))))
    return b"".join(out)


def zeros(bits) -> tuple:
    return tuple((0, 0, 0) if BY_BIT[bit].kind == "rate" else 0 for bit in bits)


def some_values(bits, seed: int) -> tuple:
    out = []
    for n, bit in enumerate(bits):
        v = (seed * 7919 + n * 104729) & 0xFFFFFFFF
        out.append((v % 5000, v, v >> 3) if BY_BIT[bit].kind == "rate" else v)
    return tuple(out)


DEFINE = sender_define()
BENCH = (StoreItem("http_req_rate", period=10000), StoreItem("gpc0"))


def test_new_entries_of_every_fast_type_and_message_variant() -> None:
    items = [(7, 1000, 0x0A000001, some_values(SENT_BITS, 1))]
    items += [(None, 2000 + i, 0x0A000100 + i, some_values(SENT_BITS, i)) for i in range(50)]
    items += [(900 + i, None, 0x0B000000 + i, some_values(SENT_BITS, i)) for i in range(50)]
    items += [(None, None, 0x0C000000 + i, some_values(SENT_BITS, i)) for i in range(50)]
    tables = twins()
    results = walk_both(encode_updates(DEFINE, items), DEFINE, tables)
    assert results[0][2] == len(items) and len(tables[1]) == len(items)


def test_growing_the_table_calls_get_or_create_and_goes_on() -> None:
    """An empty table has no free row: the table's get_or_create makes new rows (the
    arrays grow, so no buffer may be held then), and the run goes on."""
    items = [(None, 1000, 0x0A000000 + i, some_values((2, 10), i)) for i in range(3000)]
    define = sender_define(bits=(2, 10), table_id=1)
    tables = twins(store=BENCH)
    results = walk_both(encode_updates(define, items), define, tables)
    assert results == [(len(encode_updates(define, items)), 3000, 3000)]
    assert tables[1]._rows > 3000 > tables[1]._rows - 1024


def test_existing_entries_anywhere_in_the_lru_list() -> None:
    """Entries learned again out of LRU order (the table's _lru_relink), at the tail,
    and entries traffic tracks (one kept at the tail)."""

    def setup(table: StickTable) -> None:
        for i in range(40):
            table.release(table.track_key(0x0A000000 + i, True))
            table.clock.advance(0.003)
        table.release(table.track_key(0x7F000001, True))

    items = [(None, 30000 - 7 * i, 0x0A000000 + (i * 13) % 40, some_values(SENT_BITS, i)) for i in range(60)]
    items += [(None, None, 0x7F000001, some_values(SENT_BITS, 99))]
    items += [(None, 29000 + i, 0x0D000000 + i, some_values(SENT_BITS, i)) for i in range(20)]
    tables = twins(setup)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)


@pytest.mark.parametrize("nopurge", [False, True], ids=["purge", "nopurge"])
def test_a_full_table(nopurge: bool) -> None:
    items = [(None, 1000 + 10 * i, 0x0A000000 + i, some_values(SENT_BITS, i)) for i in range(40)]
    items += [(None, 5000, 0x0A000003, zeros(SENT_BITS)), (None, 900, 0x0B000000, zeros(SENT_BITS))]
    tables = twins(size=16, nopurge=nopurge)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)
    assert len(tables[1]) == 16


@pytest.mark.parametrize("expire", [None, 30000], ids=["no-expire", "expire"])
@pytest.mark.parametrize("sync", [False, True], ids=["not-synced", "synced"])
def test_tables_without_expire_or_peers_numbering(expire, sync) -> None:
    items = [(None, None, 0x0A000000 + i % 7, some_values(SENT_BITS, i)) for i in range(20)]
    items += [(5, 1000 * i, 0x0A000000 + i % 5, some_values(SENT_BITS, i)) for i in range(10)]
    tables = twins(expire=expire, sync=sync)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)


@pytest.mark.parametrize(
    "expires",
    [
        [20_000, 20_010, 20_004, 20_030, 19_990, 12_000, 20_040],  # slack behind the one before
        [1000 + i for i in range(30)],  # in front of the tracked tail
        [5000, 5000 - LEARNED_EXPIRY_SLACK_MS + 1, 5000 - LEARNED_EXPIRY_SLACK_MS, 5000 + 2**31, 0, 1],
        [2**32 - 5_000_000, 2**32 - 5_000_001, 2**32 - 4_999_999],  # expiring at tick 0: tick 1
        [40_000, 39_950, 39_960, 10_000, 39_999, 40_001],  # beyond the tracked tail
    ],
)
@pytest.mark.parametrize("tracked_tail", [False, True])
def test_expiry_slack_and_the_one_newer_entry_at_the_tail(expires, tracked_tail) -> None:
    def setup(table: StickTable) -> None:
        if tracked_tail:
            table.release(table.track_key(0x7F000001, True))  # expires in 30 s: the tail

    items = [(None, e & 0xFFFFFFFF, 0x0A000000 + i, zeros(SENT_BITS)) for i, e in enumerate(expires)]
    tables = twins(setup)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)


def test_the_table_expiry_wrapping_to_tick_zero() -> None:
    """Untimed updates take the table's expire from now; a sum of 0 (modulo 2**32)
    is tick 1 (0 means never)."""
    items = [(None, None, 0x0A000000 + i, zeros(SENT_BITS)) for i in range(3)]
    tables = twins(start=(2**32 - 30000) / 1000)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)
    assert tables[1]._exp[tables[1].lookup(0x0A000000)] == 1


def test_integer_keys_and_u64_extremes() -> None:
    define = sender_define(m.KEY_INTEGER)
    big = tuple(
        (2**32 - 1, 2**64 - 1, 2**33 + 5) if BY_BIT[bit].kind == "rate" else 2**64 - 1 for bit in SENT_BITS
    )
    items = [(None, None, k, big) for k in (0, 1, 2**32 - 1, 2**31, 77)]
    items += [(None, None, k, some_values(SENT_BITS, k)) for k in (0, 77)]
    tables = twins(key_type="integer")
    walk_both(encode_updates(define, items), define, tables)


def _update(define: m.Define, values_bytes: bytes, key: int = 0x0A0000FF) -> bytes:
    body = key.to_bytes(4, "big") + values_bytes
    return bytes((10, 0x81)) + varint.encode(len(body)) + body


def test_odd_varints_truncation_garbage_and_other_messages() -> None:
    """Long varints (up to ten bytes), varints over 64 bits or ten bytes, bodies cut
    short or longer than their values, two-byte lengths, other classes and types, and
    random bytes, between good updates."""
    define = sender_define(bits=(2, 10), table_id=1)  # gpc0 then http_req_rate
    good = encode_updates(define, [(None, None, 0x0A000000 + i, some_values((2, 10), i)) for i in range(3)])
    ten = varint.encode(2**64 - 1)
    assert len(ten) == 10
    cases = [
        _update(define, varint.encode(2**32 + 3) + b"\x01\x02\x03"),  # a u32 of five bytes: cut to 32 bits
        _update(define, ten + b"\x01" + ten + b"\x03"),  # ten bytes each
        _update(define, b"\xff" * 9 + b"\x10" + b"\x00\x00\x00"),  # over 64 bits
        _update(define, b"\xff" * 9 + b"\x0f" + b"\x00\x00\x00"),  # just within
        _update(define, b"\xf0" + b"\x80" * 10 + b"\x00" + b"\x00\x00\x00"),  # eleven bytes
        _update(define, b"\x01\x02\x03"),  # one value short
        _update(define, b"\x01\x02\x03\x04\x09\x09"),  # longer than its values
        _update(define, b"\x01\x02\x03\xf5"),  # a varint cut by the end of the body
        bytes((10, 0x80, 6)) + b"\x00\x00\x00\x01\x0b\x00",  # a key cut short
        bytes((10, 0x85, 8)) + b"\x00" * 8,  # timed, cut in its key
        bytes((10, 0x81, 0xF0, 0x01)) + b"\x00" * 260,  # a two-byte length
        bytes((10, 0x82, 2, 1, 2)),  # another type
        bytes((0, 0x81, 2, 1, 2)),  # another class
        b"\x0a\x81",  # nothing after the type
        b"\x0a\x81\x0c\x0a",  # incomplete
    ]
    tables = twins(store=BENCH)
    for case in cases:
        walk_both(good + case + good, define, tables)
        walk_both(good + case, define, tables)


@settings(max_examples=40, deadline=None)
@given(junk=st.binary(max_size=60), cut=st.integers(0, 200))
def test_random_bytes_and_cut_buffers(junk: bytes, cut: int) -> None:
    define = sender_define(bits=(2, 10), table_id=1)
    good = encode_updates(
        define, [(None, 1000 + i, 0x0A000000 + i, some_values((2, 10), i)) for i in range(6)]
    )
    data = good[:cut] + junk + good
    tables = twins(store=BENCH)
    walk_both(data, define, tables)


def test_max_count_a_start_inside_and_an_end_before_the_buffer() -> None:
    define = sender_define(bits=(2, 10), table_id=1)
    items = [(None, 1000 + i, 0x0A000000 + i, some_values((2, 10), i)) for i in range(10)]
    data = encode_updates(define, items)
    tables = twins(store=BENCH)
    for max_count in (0, 1, 3):
        walk_both(data, define, tables, max_count)
    runs = [runner(table, define, compiled) for table, compiled in zip(tables, (None, LEARN), strict=True)]
    one = len(data) // 10
    buf = bytearray(data) + b"\x0a\x81"
    for pos, end, last_id in [
        (one, len(data), 5),
        (one, 5 * one, 2**32 - 1),
        (0, 5 * one - 1, 0),  # the fifth one cut by end
        (len(buf) - 2, len(buf), 3),
        (3 * one, 3 * one, 3),
        (2 * one, one, 3),  # end before pos
        (-1, len(buf), 3),  # outside what a decoder passes: the generated code's answer
        (0, len(buf) + 7, 3),
        (len(buf) + 5, len(buf) + 9, 3),
    ]:
        got = [run(buf, pos, end, last_id, codec.NO_LIMIT) for run in runs]
        assert got[0] == got[1], (pos, end)
        assert raw_state(tables[0]) == raw_state(tables[1])


def test_lists_hold_the_rows_of_the_key_dicts() -> None:
    """The LRU lists hold the very int objects the key dicts hold (no int per entry
    more than the generated code keeps)."""
    define = sender_define(bits=(2, 10), table_id=1)
    items = [(None, 1000 + i, 0x0A000000 + i, some_values((2, 10), i)) for i in range(2000)]
    tables = twins(store=BENCH)
    walk_both(encode_updates(define, items), define, tables)
    table = tables[1]
    for shard in table._shards:
        for row in shard.values():
            nxt = table._lru_next[row]
            if nxt != -1:
                assert table._lru_prev[nxt] is row
            prev = table._lru_prev[row]
            if prev != -1:
                assert table._lru_next[prev] is row


def test_a_table_choosing_the_key_dict_by_other_bits() -> None:
    """The compiled runner finds the key's dict as the table does, whichever bits of
    the key choose it."""

    def by_bits_0_to_3(table: StickTable) -> None:  # not the table's own (bits 16-19)
        table._shard_of = lambda key: table._shards[key & 15]
        table._shard_expr = lambda key: f"{key} & 15"

    items = [(None, 1000 + i, 0x0A000000 + 4099 * i, some_values(SENT_BITS, i)) for i in range(100)]
    items += [(None, 9000, 0x0A000000 + 4099 * i, zeros(SENT_BITS)) for i in range(0, 100, 7)]
    tables = twins(by_bits_0_to_3)
    walk_both(encode_updates(DEFINE, items), DEFINE, tables)
    assert sum(1 for shard in tables[1]._shards if shard) > 4
    for shard_no, shard in enumerate(tables[1]._shards):
        assert all(key & 15 == shard_no for key in shard)


def test_tables_the_compiled_runner_does_not_take_fall_back_to_the_generated_one() -> None:
    clock = task.Clock()
    table = make_table(clock)
    env, _, _ = table.remote_apply_source(codec.update_plan(DEFINE))
    kinds = tuple(kind for _, kind, _ in codec.update_plan(DEFINE))
    assert LEARN.make_runner(env, kinds, None) is not None
    assert LEARN.make_runner({**env, "keys": list(env["keys"])}, kinds, None) is None
    assert LEARN.make_runner({**env, "shards": env["shards"][:3]}, kinds, None) is None
    assert LEARN.make_runner({**env, "shards": env["shards"][::-1]}, kinds, None) is None  # other dicts
    table._shard_of = lambda key: table._shards[hash(str(key)) & 15]  # not some bits of the key
    assert LEARN.make_runner(env, kinds, None) is None
    del table._shard_of
    assert LEARN.make_runner(env, ("u32", "s32"), None) is None
    del env["SYNC"]
    assert LEARN.make_runner(env, kinds, None) is None


# ------------------------------------------------------------------ equivalence at large

u32 = st.one_of(st.integers(0, 300), st.integers(0, 0xFFFFFFFF), st.integers(0, 2**64 - 1))
u64 = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))


def values_for(bits):
    return st.tuples(
        *(
            st.tuples(u32, u32, u32)
            if BY_BIT[bit].kind == "rate"
            else (u64 if BY_BIT[bit].kind == "u64" else u32)
            for bit in bits
        )
    )


@st.composite
def scenarios(draw):
    bits = tuple(sorted(draw(st.sets(st.sampled_from(FAST_BITS), min_size=1, max_size=6))))
    key_type = draw(st.sampled_from(["ip", "integer"]))
    define = sender_define(m.KEY_IPV4 if key_type == "ip" else m.KEY_INTEGER, bits=bits)
    table_kw = {
        "key_type": key_type,
        "size": draw(st.sampled_from([8, 30, 100_000])),
        "nopurge": draw(st.booleans()),
        "expire": draw(st.sampled_from([None, 30000])),
        "sync": draw(st.booleans()),
    }
    keys = st.integers(0, 40).map(lambda i: 0x0A000000 + i)
    tracked = draw(st.lists(st.tuples(keys, st.floats(0, 0.05)), max_size=12))
    expire = st.one_of(st.none(), st.integers(0, 60000), st.integers(0, 0xFFFFFFFF))
    uid = st.one_of(st.none(), st.integers(0, 0xFFFFFFFF))
    items = draw(st.lists(st.tuples(uid, expire, keys, values_for(bits)), max_size=40))
    data = bytearray(encode_updates(define, items))
    for _ in range(draw(st.integers(0, 3))):  # damage: bytes changed, cut out or put in
        where = draw(st.integers(0, len(data)))
        what = draw(st.sampled_from(["set", "cut", "insert"]))
        if what == "set" and where < len(data):
            data[where] = draw(st.integers(0, 255))
        elif what == "cut":
            del data[where : where + draw(st.integers(1, 20))]
        else:
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
    return define, table_kw, tracked, bytes(data)


@settings(max_examples=150, deadline=None)
@given(scenario=scenarios(), max_count=st.sampled_from([codec.NO_LIMIT, codec.NO_LIMIT, 1, 5]))
def test_compiled_and_generated_runners_leave_the_same_table(scenario, max_count) -> None:
    define, table_kw, tracked, data = scenario

    def setup(table: StickTable) -> None:
        for key, wait in tracked:
            row = table.track_key(key, True)
            if row is not None:
                table.release(row)
            table.clock.advance(wait)

    tables = twins(setup, store=STORED, **table_kw)
    walk_both(data, define, tables, max_count)


# ------------------------------------------------------------------ the captured streams


def _learning_table(define: m.Define, clock: task.Clock) -> StickTable:
    """A table storing every counter and rate the captured DEFINE announces."""
    store = []
    for name, kind, _count in codec.update_plan(define):
        if kind in ("u32", "u64"):
            store.append(StoreItem(name))
        elif kind == "rate":
            param = define.param_for(next(bit for bit, dt in BY_BIT.items() if dt.name == name))
            store.append(StoreItem(name, period=param.period if param and param.period else 1000))
    key_type = "ip" if define.key_type == m.KEY_IPV4 else "integer"
    spec = TableSpec(
        BUILTIN, define.name, define.name, key_type, 4, 1000, expire=define.expire, store=tuple(store)
    )
    table = StickTable(spec, clock)
    table.sync = True
    return table


def _learn_stream(binary: bytes, compiled) -> tuple[list, dict]:
    clock = task.Clock()
    clock.advance(1000)
    tables: dict[str, StickTable] = {}

    def runner_for(define: m.Define):
        if define.key_type not in (m.KEY_IPV4, m.KEY_INTEGER):
            return None
        table = tables.setdefault(define.name, _learning_table(define, clock))
        source = table.remote_apply_source(codec.update_plan(define))
        return codec.update_runner(define, source, compiled) if source is not None else None

    decoder = codec.Decoder(raw_ip_keys=True, runner_for=runner_for)
    try:
        msgs = decoder.feed(binary)
    except codec.PeersProtocolError as exc:
        msgs = [*exc.messages, ("error", exc.answer)]
    return msgs, {name: raw_state(table) for name, table in tables.items()}


@pytest.mark.parametrize("stream", captured_streams(), ids=lambda s: s.id)
def test_captured_streams_are_learned_alike(stream) -> None:
    """Every stream captured between real HAProxy peers: the same messages and the same
    tables with the compiled runner as with the generated one."""
    _, binary = split_handshake(stream.data(), stream.is_client)
    assert _learn_stream(binary, LEARN) == _learn_stream(binary, None)
