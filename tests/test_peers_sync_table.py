"""`PeersSync` with the real `StickTable`: values, rates, expiry and local-only types
come through replication as HAProxy carries them."""

from __future__ import annotations

import random

import attrs
import pytest
from twisted.internet import task

from minilb.config.model import StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import codec
from minilb.peers import messages as m
from minilb.peers import sync as s
from minilb.speedups import TEACH_API
from minilb.stick.table import StickTable
from tests.support.peers import ST_IP_SPEC, PeerNet, captured_streams
from tests.support.speedups import IMPLS, choose

SPEC = attrs.evolve(
    ST_IP_SPEC,
    store=(
        StoreItem("gpc0"),
        StoreItem("conn_cnt"),
        StoreItem("conn_cur"),
        StoreItem("http_req_cnt"),
        StoreItem("http_req_rate", period=10000),
        StoreItem("server_key"),
        StoreItem("gpc", count=2),
    ),
)
IP1, IP2 = 0x0A000001, 0x0A000002


class OffsetClock:
    """Another process's clock: same pace, different origin."""

    def __init__(self, clock: task.Clock, offset: float):
        self.clock = clock
        self.offset = offset

    def seconds(self) -> float:
        return self.clock.seconds() + self.offset


def make(name: str, clock, table_clock=None, synced: bool = True, **kw) -> s.PeersSync:
    table = StickTable(SPEC, table_clock or clock)
    sync = s.PeersSync(name, ("hapA", "hapB"), [table], clock, random.Random(name), 4242, **kw)
    if synced and not kw.get("has_old_process"):
        sync.local_done = sync.remote_done = True
        sync.resync_deadline_ms = None
    return sync


def set_local(table: StickTable, key: int, **values) -> int:
    row = table.get_or_create(key)
    for name, value in values.items():
        if name == "http_req_rate":
            for _ in range(value):
                table.add(row, name)
        else:
            table.set(row, name, value)
    table.touch_local(row)
    return row


def value(table: StickTable, key: int, name: str, idx: int = 0):
    return table.get(table.lookup(key), name, idx)


def test_values_rates_and_local_types_replicate() -> None:
    clock = task.Clock()
    clock.advance(100)
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))
    # B's millisecond clock has another origin: only rate ages cross the wire
    b = net.add("hapB", make("hapB", clock, table_clock=OffsetClock(clock, 123456.789)))
    ta, tb = a.tables[0].table, b.tables[0].table
    set_local(ta, IP1, gpc0=5, conn_cnt=3, conn_cur=2, http_req_cnt=4, http_req_rate=4, server_key="s1")
    row = ta.lookup(IP1)
    ta.set(row, "gpc", 77, idx=1)
    ta.touch_local(row)
    clock.advance(4)  # rate period half elapsed
    net.run(3)
    assert value(tb, IP1, "gpc0") == 5 and value(tb, IP1, "conn_cnt") == 3
    assert value(tb, IP1, "conn_cur") == 0  # sent, never learned
    assert value(tb, IP1, "server_key") == "s1" and value(tb, IP1, "gpc", 1) == 77
    assert value(tb, IP1, "http_req_rate") == value(ta, IP1, "http_req_rate") == 4
    clock.advance(9)  # into the next period: both decay the same way
    assert value(tb, IP1, "http_req_rate") == value(ta, IP1, "http_req_rate") < 4
    # learned values are not local changes: B has nothing to push back
    assert tb.local_update == 0


def test_learned_values_overwrite_local_ones() -> None:
    clock = task.Clock()
    clock.advance(100)
    net = PeerNet(clock)
    a = net.add("hapA", make("hapA", clock))
    b = net.add("hapB", make("hapB", clock))
    set_local(b.tables[0].table, IP2, gpc0=100)
    net.run(3)
    set_local(a.tables[0].table, IP2, gpc0=1)
    net.run(1)
    assert value(b.tables[0].table, IP2, "gpc0") == 1  # overwritten, not added


def test_handover_keeps_remaining_expiry_and_empties_nothing() -> None:
    clock = task.Clock()
    clock.advance(100)
    net = PeerNet(clock)
    old = net.add("old", make("hapA", clock, synced=False))
    told = old.tables[0].table
    set_local(told, IP1, gpc0=5)
    clock.advance(20)
    set_local(told, IP2, gpc0=7)
    new = net.add("new", make("hapA", clock, has_old_process=True))
    net.routes[("old", "hapA")] = "new"
    old.begin_handover()
    net.run(0.1)
    tnew = new.tables[0].table
    assert old.handover_ok
    assert value(tnew, IP1, "gpc0") == 5 and value(tnew, IP2, "gpc0") == 7
    # TIMED updates carry the remaining lifetime: 40 s and 60 s left, not 60 s each
    assert abs(tnew.expire_in(tnew.lookup(IP1)) - 40000) <= 200
    assert abs(tnew.expire_in(tnew.lookup(IP2)) - 60000) <= 200
    # entries handed over are remote ones in the new process: not pushed to others
    assert tnew.local_update == 0


def test_teaches_haproxy_the_way_haproxy_teaches() -> None:
    """Play hapB of exp1 stream 7 (hello, RESYNC-REQUEST, ACK, CONFIRM) against our hapA
    holding the same three entries: the answer has HAProxy's shape and DEFINE bytes."""
    spec = ST_IP_SPEC
    clock = task.Clock()
    clock.advance(1000)
    table = StickTable(spec, clock)
    a = s.PeersSync("hapA", ("hapA", "hapB"), [table], clock, random.Random(1), 8867)
    clock.advance(6)
    a.tick()
    assert a.synced
    set_local(table, 0x0A000001, gpc0=5)
    set_local(table, 0x0A000002, http_req_cnt=300)
    set_local(table, 0x7F000001, conn_cnt=3, http_req_cnt=3)
    captured = {st.id: st for st in captured_streams()}
    client = captured["exp1-ip-table/stream7_client_58542-to-20001.hex"].data()
    server = captured["exp1-ip-table/stream7_server_20001-to-58542.hex"]
    link = a.incoming()
    a.data_received(link, client[:32])  # hello + RESYNC-REQUEST
    a.tick()
    out = link.data_to_send()
    assert out.startswith(b"200\n" + server.rows[1].raw)  # the same DEFINE bytes
    msgs = codec.Decoder().feed(out[4:])
    kinds = [x.type_code if isinstance(x, m.Update) else type(x).__name__ for x in msgs]
    # HAProxy's capture also holds the incremental push it started before reading the
    # request; we read the request in the same segment as the hello and teach at once
    assert kinds == ["Define", 0x85, 0x86, 0x86, "ResyncFinished"]
    assert all(59000 < x.expire <= 60000 for x in msgs if isinstance(x, m.Update))
    # ACK + CONFIRM: HAProxy would re-push the three entries as plain updates; we
    # push only what changed since the teach began
    a.data_received(link, client[32:])
    a.tick()
    assert link.data_to_send() == b""
    set_local(table, 0x0A000002, gpc0=9)
    a.tick()
    again = codec.Decoder(raw_ip_keys=True)
    again.feed(out[4:])
    pushed = [x for x in again.feed(link.data_to_send()) if isinstance(x, m.Update)]
    assert [(x.type_code, x.key, x.expire) for x in pushed] == [(0x80, 0x0A000002, None)]


def test_entry_changed_during_a_teach_is_pushed_after_confirm() -> None:
    """A teach spans several batches; an entry changed after the walk sent it (which
    would keep its not-yet-pushed id) is pushed again after CONFIRM, the others not."""
    clock = task.Clock()
    clock.advance(1000)
    a = make("hapA", clock, teach_batch=10)
    table = a.tables[0].table
    for i in range(50):
        set_local(table, 0x0A000000 + i, gpc0=i)
    link = a.incoming()
    a.data_received(link, b"HAProxyS 2.1\nhapA\nhapB 7 1\n\x00\x00")
    decoder = codec.Decoder(raw_ip_keys=True)
    first = decoder.feed(link.data_to_send()[4:])
    assert 0 < len([x for x in first if isinstance(x, m.Update)]) < 50  # the teach goes on
    set_local(table, 0x0A000000, gpc0=1000)  # taught already, with gpc0=0
    set_local(table, 0x0A000031, gpc0=2000)  # not taught yet: taught with its new value
    msgs = list(first)
    while m.ResyncFinished() not in msgs:
        a.tick()
        msgs += decoder.feed(link.data_to_send())
    taught = {x.key: dict(x.values)["gpc0"] for x in msgs if isinstance(x, m.Update)}
    assert len(taught) == 50 and taught[0x0A000000] == 0 and taught[0x0A000031] == 2000
    a.data_received(link, b"\x00\x03")  # CONFIRM
    a.tick()
    after = [x for x in decoder.feed(link.data_to_send()) if isinstance(x, m.Update)]
    assert {x.key: dict(x.values)["gpc0"] for x in after} == {0x0A000000: 1000, 0x0A000031: 2000}
    assert all(x.expire is None for x in after)


SPEC_ENC = TableSpec(
    BUILTIN,
    "enc",
    "enc",
    "ip",
    4,
    100,
    expire=600_000,
    peers="p",
    store=(
        StoreItem("gpc0"),
        StoreItem("conn_cur"),
        StoreItem("http_req_rate", period=10000),
        StoreItem("bytes_in_cnt"),
        StoreItem("conn_rate", period=1000),
    ),
)


@pytest.fixture(params=IMPLS)
def teach_impl(request, monkeypatch) -> str:
    """The table encoders under test: generated, or compiled (minilb_speedups.teach)."""
    choose(request.param, "teach", TEACH_API, monkeypatch)
    return request.param


def test_generated_wire_encoder_gives_the_bytes_of_encode_entry(teach_impl):
    """The teach/push fast path of ip tables of counters and rates: every message
    variant (UPDATE, INCREMENTAL, both TIMED) equals the generic encoder's bytes,
    including multi-byte varints and an untouched rate."""
    clock = task.Clock()
    clock.advance(5000)
    table = StickTable(SPEC_ENC, clock)
    encode = table.wire_encoder()
    assert encode is not None
    assert getattr(encode, "compiled", False) == (teach_impl == "compiled")
    rows = []
    for i, gpc0 in enumerate((0, 1, 239, 240, 2287, 2288, 70_000, 264_431, 264_432, 2**32 - 1)):
        row = table.get_or_create(0x0A000000 + i * 77_777)
        table.set(row, "gpc0", gpc0)
        table.set(row, "bytes_in_cnt", gpc0 * 2**31)
        table.add(row, "http_req_rate", gpc0 % 1000)
        clock.advance(0.7)
        rows.append(row)
    encoder = codec.Encoder()
    encoder.encode(s.table_define(table, 1))
    now = table.now_tick()
    for row in rows:
        for update_id, expire in ((7, None), (None, None), (2**32 - 1, 1234), (None, 300_000)):
            want = encoder.encode_entry(update_id, expire, table.entry(row).key, table.wire_values(row))
            assert encode(update_id, expire, now, row) == want
    # tables with other key types or value kinds use the generic encoder
    other = TableSpec(BUILTIN, "str", "str", "string", 32, 10, store=(StoreItem("gpc0"),))
    assert StickTable(other, clock).wire_encoder() is None


def test_teach_encoder_gives_the_bytes_of_the_entry_by_entry_teach(teach_impl):
    """The batched teach (`wire_teach_encoder`) equals one `wire_encoder` message per
    live row with the entry's id (INCREMENTAL after its predecessor) and remaining
    expiry: local ids with gaps, a remote id, a never numbered entry, a freed row, an
    expired entry, whatever the batch size."""
    clock = task.Clock()
    clock.advance(5000)
    table = StickTable(SPEC_ENC, clock)
    table.sync = True
    rows = []
    for i in range(12):
        row = table.get_or_create(0x0A000000 + i * 77_777)
        table.set(row, "gpc0", i * 1000)
        table.add(row, "http_req_rate", i)
        table.touch_local(row)
        clock.advance(0.3)
        rows.append(row)
    table.touch_local(rows[3])  # renumbered: a gap, and the last id
    table.remove(rows[5])  # a freed row
    table.get_or_create(0x0B000000)  # never numbered (id 0)
    table.apply_remote(0x0C000000, {"gpc0": 5}, 10)  # a remote id, expiring soon
    clock.advance(0.05)  # ... now expired (remaining time 0)
    encode = table.wire_encoder()
    now = table.now_tick()
    for timed in (True, False):
        want, previous = [], None
        for row in table.live_rows():
            uid = table.update_id_of(row)
            implicit = previous is not None and uid == (previous + 1) & 0xFFFFFFFF
            previous = uid
            want.append(encode(None if implicit else uid, table.expire_in(row) if timed else None, now, row))
        assert len(want) == 13
        for budget in (1, 3, 1000):
            teach = table.wire_teach_encoder()
            assert getattr(teach, "compiled", False) == (teach_impl == "compiled")
            got, row, previous, sent = [], 0, None, 0
            while row < table.row_end:
                data, row, previous, count = teach(row, table.row_end, budget, timed, previous)
                assert count <= budget
                got.append(data)
                sent += count
            assert b"".join(got) == b"".join(want) and sent == 13, (timed, budget)
    other = TableSpec(BUILTIN, "str", "str", "string", 32, 10, store=(StoreItem("gpc0"),))
    assert StickTable(other, clock).wire_teach_encoder() is None


def _start_handover(clock: task.Clock, entries: int):
    old = make("hapA", clock, teach_batch=10)
    table = old.tables[0].table
    for i in range(entries):
        set_local(table, 0x0A000000 + i, gpc0=i)
    old.begin_handover()
    assert old.dials_due() == ["hapA"]
    link = old.connection_made("hapA")
    old.data_received(link, b"200\n")
    return old, link


def _successor_learning(entries: int):
    """A hand-over under way: (clock, old, its link, the successor, the successor's link)."""
    clock = task.Clock()
    clock.advance(100)
    old, link = _start_handover(clock, entries)
    new = make("hapA", clock, has_old_process=True)
    peer_link = new.incoming()
    new.data_received(peer_link, link.data_to_send())
    return clock, old, link, new, peer_link


def test_a_handover_that_keeps_moving_is_not_cut_after_5s() -> None:
    """A slow successor: each batch of the teach takes it 2 s; the 5 s limits bound
    the wait for progress, not the whole transfer (over 10 s here): the old process
    does not give up, and the successor learns to the end before it dials its remote
    peer (issue 6)."""
    clock, old, link, new, peer_link = _successor_learning(150)
    for _ in range(40):
        clock.advance(2)
        old.tick()
        new.tick()
        if not old.handover_done:
            assert not new.local_done and new.dials_due() == []
        new.data_received(peer_link, link.data_to_send())
        old.data_received(link, peer_link.data_to_send())
        if old.handover_done:
            break
    assert clock.seconds() > 100 + 10
    assert old.handover_done and old.handover_ok and link.close_reason == "hand-over confirmed"
    assert len(new.tables[0].table) == 150
    assert new.local_done and new.dials_due() == ["hapB"]


def test_a_handover_that_stalls_for_5s_is_given_up() -> None:
    clock = task.Clock()
    clock.advance(100)
    old, link = _start_handover(clock, 150)
    clock.advance(2)
    old.tick()
    link.data_to_send()
    link.paused = True  # the successor reads nothing any more: our transport is full
    clock.advance(4.9)
    old.tick()
    assert not old.handover_done
    clock.advance(0.2)
    old.tick()
    assert old.handover_done and not old.handover_ok
    assert link.should_close and link.close_reason == "hand-over timed out"


def test_a_teach_over_mostly_free_rows_goes_in_bounded_steps(teach_impl) -> None:
    """Rows freed (expired, purged) still have to be scanned: a step of the teach scans
    at most four rows per entry of its batch, so a table of mostly free rows is not
    walked in one reactor call."""
    clock = task.Clock()
    clock.advance(1000)
    table = StickTable(attrs.evolve(SPEC_ENC, size=1000), clock)  # a table of the batched teach
    a = s.PeersSync("hapA", ("hapA", "hapB"), [table], clock, random.Random(1), 1, teach_batch=5)
    a.local_done = a.remote_done = True
    assert table.wire_teach_encoder() is not None
    rows = [set_local(table, 0x0A000000 + i, gpc0=i) for i in range(200)]
    for row in rows[:-3]:
        table.remove(row)
    link = a.incoming()
    a.data_received(link, b"HAProxyS 2.1\nhapA\nhapB 7 1\n\x00\x00")
    decoder = codec.Decoder(raw_ip_keys=True)
    msgs = decoder.feed(link.data_to_send()[4:])
    steps = 1
    while m.ResyncFinished() not in msgs:
        a.tick()
        msgs += decoder.feed(link.data_to_send())
        steps += 1
    assert steps >= 200 // (4 * 5)
    taught = sorted(x.key for x in msgs if isinstance(x, m.Update))
    assert taught == [0x0A000000 + i for i in range(197, 200)]


def test_a_step_of_a_full_teach_takes_more_entries_with_the_compiled_encoder(teach_impl) -> None:
    """By default a step of a full teach encodes TEACH_BATCH entries with the generated
    encoder and COMPILED_TEACH_BATCH with the compiled one (about as long a step)."""
    clock = task.Clock()
    clock.advance(1000)
    table = StickTable(attrs.evolve(SPEC_ENC, size=5000), clock)
    a = s.PeersSync("hapA", ("hapA", "hapB"), [table], clock, random.Random(1), 1)
    a.local_done = a.remote_done = True
    entries = s.TEACH_BATCH + 500
    assert s.COMPILED_TEACH_BATCH > entries
    for i in range(entries):
        set_local(table, 0x0A000000 + i, gpc0=i)
    link = a.incoming()
    a.data_received(link, b"HAProxyS 2.1\nhapA\nhapB 7 1\n\x00\x00")
    decoder = codec.Decoder(raw_ip_keys=True)
    first = [x for x in decoder.feed(link.data_to_send()[4:]) if isinstance(x, m.Update)]
    assert len(first) == (entries if teach_impl == "compiled" else s.TEACH_BATCH)
    a.tick()
    rest = decoder.feed(link.data_to_send())
    assert len(first) + len([x for x in rest if isinstance(x, m.Update)]) == entries
    assert m.ResyncFinished() in rest


def test_a_handover_silent_for_5s_sends_the_successor_to_remote_peers() -> None:
    clock, old, link, new, peer_link = _successor_learning(150)
    clock.advance(4)
    old.tick()
    new.data_received(peer_link, link.data_to_send())  # a batch, then nothing more
    clock.advance(1)
    new.tick()  # 5 s after start: the lesson moved meanwhile
    assert not new.local_done and new.dials_due() == []
    clock.advance(4.9)
    new.tick()
    assert not new.local_done
    clock.advance(0.1)
    new.tick()
    assert new.local_done and new.dials_due() == ["hapB"]
