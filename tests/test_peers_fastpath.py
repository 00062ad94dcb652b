"""The learner's fast path (`codec.update_runner` over the table's
`remote_apply_source`) against the generic decoder + `StickTable.apply_remote` on the
same bytes: same table contents, same update ids, same errors, whatever the feeding;
each with the generated runner (pure) and the compiled one (``minilb_speedups.learn``)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import task

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import codec
from minilb.peers import messages as m
from minilb.stick.datatypes import BY_BIT, BY_NAME
from minilb.stick.table import StickTable
from tests.support.speedups import compiled, needs

LEARN = compiled("learn")
NEEDS_LEARN = needs("learn")
#: the test runs with the generated runner, and with the compiled one where it is built
#: (the Hypothesis tests have a compiled twin instead: pytest-twisted does not run
#: parametrized Hypothesis tests)
RUNNERS = pytest.mark.parametrize(
    "compiled", [pytest.param(None, id="pure"), pytest.param(LEARN, id="compiled", marks=NEEDS_LEARN)]
)

#: every type the fast path decodes: counters (u32, u64, the local conn_cur) and rates
FAST_BITS = tuple(bit for bit, dt in sorted(BY_BIT.items()) if dt.kind in ("u32", "u64", "rate"))
#: what the receiving table stores: some of the sender's types, one it does not send
STORED = (
    StoreItem("gpt0"),
    StoreItem("gpc0"),
    StoreItem("conn_rate", period=10000),
    StoreItem("conn_cur"),
    StoreItem("http_req_rate", period=10000),
    StoreItem("bytes_in_cnt"),
    StoreItem("bytes_out_rate", period=1000),
    StoreItem("http_fail_cnt"),
    StoreItem("gpc1"),
)
#: what the sender announces: every fast type except gpc1 (stored here, never sent)
SENT_BITS = tuple(bit for bit in FAST_BITS if BY_BIT[bit].name != "gpc1")


def sender_define(key_type: int = m.KEY_IPV4, bits=SENT_BITS, table_id: int = 3) -> m.Define:
    params = tuple(m.DefineParam(bit, period=10000) for bit in bits if BY_BIT[bit].has_param_block)
    return m.Define(table_id, "st", key_type, 4, sum(1 << b for b in bits), 60000, params)


def make_table(clock: task.Clock, key_type: str = "ip", store=STORED, size: int = 100_000) -> StickTable:
    spec = TableSpec(BUILTIN, "st", "st", key_type, 4, size, expire=30000, peers="p", store=store)
    table = StickTable(spec, clock)
    table.sync = True
    return table


def snapshot(table: StickTable) -> dict:
    """Every entry: raw column values, remaining expiry and update id; and the
    entry count, the LRU and update lists (as keys) and the update counter."""
    out: dict = {}
    for row in table.sorted_rows():
        key = table.entry(row).key
        cols = tuple(tuple(arr[row] for arr in col.arrays) for col in table.columns.values())
        out[key] = (cols, table.expire_in(row), table.update_id_of(row))
    lists = []
    for head, nxt in ((table._lru_head, table._lru_next), (table._upd_head, table._upd_next)):
        keys, row = [], head
        while row != -1 and len(keys) <= len(table):
            keys.append(table.entry(row).key)
            row = nxt[row]
        lists.append(keys)
    out["table"] = (len(table), table.update, *lists)
    return out


def generic(table: StickTable, data: bytes, chunk: int | None = None) -> tuple[list, dict]:
    """The reference: generic decoder, `apply_remote` for each update."""
    decoder = codec.Decoder(raw_ip_keys=True)
    return _run(decoder, table, data, chunk)


def fast(table: StickTable, data: bytes, chunk: int | None = None, compiled=None) -> tuple[list, dict]:
    def runner_for(define: m.Define):
        return codec.update_runner(define, table.remote_apply_source(codec.update_plan(define)), compiled)

    decoder = codec.Decoder(raw_ip_keys=True, runner_for=runner_for)
    return _run(decoder, table, data, chunk)


def _run(decoder: codec.Decoder, table: StickTable, data: bytes, chunk: int | None):
    """Feed ``data`` (whole, or in pieces of ``chunk`` bytes); returns what came out
    (updates as (resolved id, count) pairs, other messages as they are, and the
    error answer if any) and the decoder's last ids."""
    seen: list = []
    pieces = [data] if chunk is None else [data[i : i + chunk] for i in range(0, len(data), chunk)]
    for piece in pieces:
        try:
            msgs = decoder.feed(piece)
        except codec.PeersProtocolError as exc:
            msgs = exc.messages
            error = exc.answer
        else:
            error = None
        for msg in msgs:
            if isinstance(msg, m.Update):
                table.apply_remote(msg.key, dict(msg.values), msg.expire)
                seen.append(("update", msg.resolved_id, 1))
            elif isinstance(msg, m.Applied):
                seen.append(("update", msg.last_id, msg.count))
            else:
                seen.append(msg)
        if error is not None:
            seen.append(("error", error))
            break
    return _merge(seen), dict(decoder.last_update_ids)


def _is_update(item) -> bool:
    return isinstance(item, tuple) and item[0] == "update"


def _merge(seen: list) -> list:
    """Runs of updates as one (last id, count) item: the fast path batches them."""
    out: list = []
    for item in seen:
        if _is_update(item) and out and _is_update(out[-1]):
            out[-1] = ("update", item[1], out[-1][2] + item[2])
        else:
            out.append(item)
    return out


# 32-bit types sent with more bits (a newer or odd sender) are cut to 32 bits
u32 = st.one_of(st.integers(0, 300), st.integers(0, 0xFFFFFFFF), st.integers(0, 2**64 - 1))
u64 = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1))
rate = st.tuples(u32, u32, u32)


def value_of(bit: int):
    kind = BY_BIT[bit].kind
    return rate if kind == "rate" else (u64 if kind == "u64" else u32)


updates = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)),  # update id (None: incremental)
        st.one_of(st.none(), st.integers(0, 0xFFFFFFFF)),  # expire (None: not TIMED)
        st.integers(0, 0xFFFFFFFF),  # key
        st.tuples(*(value_of(bit) for bit in SENT_BITS)),
        st.sampled_from([None, m.Heartbeat(), m.Ack(1, 7)]),  # a message after it
    ),
    max_size=25,
)


def stream(define: m.Define, items) -> bytes:
    encoder = codec.Encoder()
    out = [encoder.encode(define)]
    names = [BY_BIT[bit].name for bit in m.bits_of(define.data_types)]
    for update_id, expire, key, values, after in items:
        out.append(encoder.encode(m.Update(update_id, expire, key, tuple(zip(names, values, strict=True)))))
        if after is not None:
            out.append(encoder.encode(after))
    return b"".join(out)


def both(
    data: bytes,
    key_type: str = "ip",
    chunk: int | None = None,
    store=STORED,
    size: int = 100_000,
    compiled=None,
):
    clock = task.Clock()
    clock.advance(5000)
    ref, out = make_table(clock, key_type, store, size), make_table(clock, key_type, store, size)
    expected = generic(ref, data)
    got = fast(out, data, chunk, compiled)
    return expected, snapshot(ref), got, snapshot(out)


def stores_what_the_generic_decoder_stores(items, key_type, compiled) -> None:
    wire_type = m.KEY_IPV4 if key_type == "ip" else m.KEY_INTEGER
    data = stream(sender_define(wire_type), items)
    expected, ref, got, out = both(data, key_type, compiled=compiled)
    assert got == expected and out == ref
    assert len(out) - 1 == len({key for _, _, key, _, _ in items})


@settings(max_examples=60, deadline=None)
@given(items=updates, key_type=st.sampled_from(["ip", "integer"]))
def test_fast_path_stores_what_the_generic_decoder_stores(items, key_type) -> None:
    stores_what_the_generic_decoder_stores(items, key_type, None)


@NEEDS_LEARN
@settings(max_examples=60, deadline=None)
@given(items=updates, key_type=st.sampled_from(["ip", "integer"]))
def test_compiled_fast_path_stores_what_the_generic_decoder_stores(items, key_type) -> None:
    stores_what_the_generic_decoder_stores(items, key_type, LEARN)


def fed_byte_by_byte_stores_the_same(items, compiled) -> None:
    data = stream(sender_define(), items)
    expected, ref, got, out = both(data, chunk=1, compiled=compiled)
    assert got == expected and out == ref


@settings(max_examples=25, deadline=None)
@given(items=updates)
def test_fast_path_fed_byte_by_byte_stores_the_same(items) -> None:
    fed_byte_by_byte_stores_the_same(items, None)


@NEEDS_LEARN
@settings(max_examples=25, deadline=None)
@given(items=updates)
def test_compiled_fast_path_fed_byte_by_byte_stores_the_same(items) -> None:
    fed_byte_by_byte_stores_the_same(items, LEARN)


@RUNNERS
def test_fast_path_handles_the_benchmark_table_and_reports_batches(compiled) -> None:
    """The issue's table (http_req_rate(10s), gpc0): one `Applied` per run of updates,
    ids resolved across incremental and TIMED variants."""
    define = sender_define(bits=(2, 10), table_id=1)
    store = (StoreItem("http_req_rate", period=10000), StoreItem("gpc0"))
    items = [(5, 1000, 0x0A000001, (7, (100, 3, 4)), None)]
    items += [(None, 2000, 0x0A000002 + i, (i, (20000, i, 0)), None) for i in range(300)]
    items += [
        (None, None, 0x0A000001, (8, (0, 0, 0)), m.Heartbeat()),
        (900, None, 0x0B000000, (1, (1, 1, 1)), None),
    ]
    data = stream(define, items)
    expected, ref, got, out = both(data, store=store, compiled=compiled)
    assert got == expected and out == ref
    assert got[0][0] == define
    assert got[0][1:] == [("update", 306, 302), m.Heartbeat(), ("update", 900, 1)]
    clock = task.Clock()
    decoder = codec.Decoder(
        raw_ip_keys=True,
        runner_for=lambda d: codec.update_runner(
            d, make_table(clock, store=store).remote_apply_source(codec.update_plan(d)), compiled
        ),
    )
    msgs = decoder.feed(data)
    assert [x for x in msgs if isinstance(x, m.Applied)] == [m.Applied(1, 302, 306), m.Applied(1, 1, 900)]


def test_types_the_fast_path_does_not_handle_use_the_generic_decoder() -> None:
    clock = task.Clock()
    table = make_table(clock)
    for name in ("server_id", "server_key", "gpt", "gpc", "gpc_rate"):
        bit = BY_NAME[name].bit
        define = sender_define(bits=(2, bit))
        source = table.remote_apply_source(codec.update_plan(define))
        assert source is None or codec.update_runner(define, source) is None, name
    # keys other than IPv4 and integer
    source = table.remote_apply_source(codec.update_plan(sender_define()))
    assert codec.update_runner(sender_define(m.KEY_STRING), source) is None


def _zeros() -> tuple:
    return tuple((0, 0, 0) if BY_BIT[bit].kind == "rate" else 0 for bit in SENT_BITS)


def _good(n: int) -> list:
    return [(None, None, 0x0A000000 + i, _zeros(), None) for i in range(n)]


def _corrupt_cases() -> dict[str, bytes]:
    """Streams of three good updates then one bad one, then a good one."""
    define = sender_define()
    good = stream(define, _good(3))
    encoder = codec.Encoder()
    encoder.current = define
    names = [BY_BIT[bit].name for bit in SENT_BITS]
    one = encoder.encode(m.Update(None, None, 0x0B000001, tuple(zip(names, _zeros(), strict=True))))
    tail = stream(define, _good(1))[len(codec.encode(define)) :]
    body = one[3:]
    cases = {
        # the length covers one byte less than the values: a truncated varint/field
        "truncated": bytes((10, 0x81, len(body) - 1)) + body[:-1],
        # a value varint of 11 bytes
        "varint too long": bytes((10, 0x81, len(body) + 10)) + body[:8] + b"\xff" * 10 + b"\x00" + body[9:],
        # a key cut short
        "short key": bytes((10, 0x80, 6)) + b"\x00\x00\x00\x01\x0b\x00",
        # longer than the 16 KiB limit
        "size limit": bytes((10, 0x81)) + codec.varint.encode(20000) + b"\x00" * 20000,
        # reserved class
        "class 255": b"\xff\x00",
    }
    return {name: good + bad + tail for name, bad in cases.items()}


@RUNNERS
def test_malformed_updates_give_the_generic_error_and_store_nothing_of_them(compiled) -> None:
    for name, data in _corrupt_cases().items():
        for chunk in (None, 1, 7):
            expected, ref, got, out = both(data, chunk=chunk, compiled=compiled)
            assert got == expected and out == ref, (name, chunk)
            assert got[0][-1][0] == "error", name
            assert sorted(k for k in out if k != "table") == [0x0A000000, 0x0A000001, 0x0A000002], name


@RUNNERS
def test_an_expiry_slightly_out_of_order_takes_the_newer_one_on_both_paths(compiled) -> None:
    """Teach batches read the clocks once each, so learned expiries can step back a
    few ms: within `LEARNED_EXPIRY_SLACK_MS` the entry keeps its predecessor's expiry
    (no walk through the LRU list); further back it is placed by its own."""
    define = sender_define(bits=(2,), table_id=1)
    items = [
        (1, 10_000, 0x0A000001, (1,), None),
        (None, 9_950, 0x0A000002, (2,), None),  # 50 ms back: 10 s like the previous one
        (None, 5_000, 0x0A000003, (3,), None),  # 5 s back: its own expiry
        (None, 20_000, 0x0A000004, (4,), None),
    ]
    data = stream(define, items)
    expected, ref, got, out = both(data, store=(StoreItem("gpc0"),), compiled=compiled)
    assert got == expected and out == ref
    left = {key: entry[1] for key, entry in out.items() if key != "table"}
    assert left == {0x0A000001: 10_000, 0x0A000002: 10_000, 0x0A000003: 5_000, 0x0A000004: 20_000}
    clock = task.Clock()
    clock.advance(5)
    table = make_table(clock, store=(StoreItem("gpc0"),))
    fast(table, data, compiled=compiled)
    clock.advance(5.001)
    table.expire_step()
    assert sorted(table.entry(r).key for r in table.rows()) == [0x0A000001, 0x0A000002, 0x0A000004]


@RUNNERS
def test_a_full_table_purges_the_same_entries_on_both_paths(compiled) -> None:
    """More learned keys than the table holds: the oldest go, as `get_or_create` purges."""
    items = [(None, 1000 + 10 * i, 0x0A000000 + i, _zeros(), None) for i in range(40)]
    items += [(None, 5000, 0x0A000003, _zeros(), None), (None, 900, 0x0B000000, _zeros(), None)]
    data = stream(sender_define(), items)
    expected, ref, got, out = both(data, size=16, compiled=compiled)
    assert got == expected and out == ref
    assert out["table"][0] == 16


def learned_behind_a_tracked_tail(expires: list[int], compiled) -> dict:
    """Learn entries 10.0.0.i expiring in ``expires[i]`` ms into a table where traffic
    keeps 127.0.0.1 the newest entry (LRU tail), on both paths; their common snapshot."""
    items = [(None, e, 0x0A000000 + i, _zeros(), None) for i, e in enumerate(expires)]
    data = stream(sender_define(), items)
    clock = task.Clock()
    clock.advance(5000)
    ref, out = make_table(clock), make_table(clock)
    for table in (ref, out):
        table.release(table.track_key(0x7F000001, True))  # expires in 30 s: the tail
    expected = generic(ref, data)
    got = fast(out, data, compiled=compiled)
    assert got == expected and snapshot(out) == snapshot(ref)
    return snapshot(out)


@RUNNERS
def test_learning_behind_an_entry_traffic_keeps_at_the_tail(compiled) -> None:
    """Traffic tracking one entry keeps it the newest (LRU tail): learned entries that
    expire sooner go in front of it, on both paths alike."""
    snap = learned_behind_a_tracked_tail([1000 + i for i in range(30)], compiled)
    assert snap["table"][2][-1] == 0x7F000001


@RUNNERS
def test_learning_a_little_out_of_order_behind_the_tail_keeps_teach_order(compiled) -> None:
    """Behind an entry traffic keeps at the tail, a learned entry expiring a few ms
    before the one learned just before it (the clocks of a teach are read per batch)
    takes that one's expiry and its place in teach order, on both paths alike; one
    expiring seconds before goes to its own place."""
    snap = learned_behind_a_tracked_tail([20_000, 20_010, 20_004, 20_030, 19_990, 12_000, 20_040], compiled)
    lru = snap["table"][2]
    assert lru == [0x0A000005, *(0x0A000000 + i for i in (0, 1, 2, 3, 4, 6)), 0x7F000001]
    assert [snap[0x0A000000 + i][1] for i in (2, 4)] == [20_010, 20_030]  # as old as the one before
    assert snap[0x0A000005][1] == 12_000
