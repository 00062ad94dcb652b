"""The Twisted adapter: PeerProtocol on fake transports, PeersService on a MemoryReactorClock."""

from __future__ import annotations

import random

from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure
from twisted.test import iosim

from minilb.config.model import Address, Bind, Peer, PeersSection, StoreItem, TableSpec
from minilb.errors import BUILTIN
from minilb.peers import sync as s
from minilb.peers.protocol import PeerFactory
from minilb.peers.service import PeersService
from minilb.stick.table import StickTable

SPEC = TableSpec(BUILTIN, "st_ip", "st_ip", "ip", 4, 100, expire=60000, peers="p", store=(StoreItem("gpc0"),))


class Owner:
    def __init__(self) -> None:
        self.changes = 0

    def changed(self) -> None:
        self.changes += 1


def make_sync(name: str, clock, spec: TableSpec = SPEC) -> s.PeersSync:
    sync = s.PeersSync(name, ("hapA", "hapB"), [StickTable(spec, clock)], clock, random.Random(name), 1)
    sync.local_done = sync.remote_done = True
    sync.resync_deadline_ms = None
    return sync


def test_accepted_connection_answers_the_hello_and_pushes() -> None:
    clock = MemoryReactorClock()
    sync = make_sync("hapA", clock)
    table = sync.tables[0].table
    row = table.get_or_create(0x0A000001)
    table.set(row, "gpc0", 5)
    table.touch_local(row)
    owner = Owner()
    proto = PeerFactory(sync, owner).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"HAProxyS 2.1\nhapA\nhapB 42 1\n")
    out = transport.value()
    assert out.startswith(b"200\n\x0a\x82")  # status line, then DEFINE of the push
    assert b"\x0a\x80" in out and owner.changes >= 2
    transport.clear()
    proto.dataReceived(b"\x01\x00")  # an error message from the peer is ignored
    proto.dataReceived(b"\xff\x00")  # class 255: protocol error, then close
    assert transport.value() == b"\x01\x00" and transport.disconnecting


def test_refused_hello_gets_its_status_and_the_connection_closes() -> None:
    sync = make_sync("hapA", MemoryReactorClock())
    proto = PeerFactory(sync, Owner()).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"HAProxyS 2.1\nhapA\nstranger 1 1\n")
    assert transport.value() == b"504\n" and transport.disconnecting


def test_full_transport_pauses_pushes_until_resumed() -> None:
    clock = MemoryReactorClock()
    sync = make_sync("hapA", clock)
    table = sync.tables[0].table
    proto = PeerFactory(sync, Owner()).buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"HAProxyS 2.1\nhapA\nhapB 42 1\n")
    transport.clear()
    proto.pauseProducing()
    row = table.get_or_create(0x0A000002)
    table.touch_local(row)
    sync.tick()
    proto.flush()
    assert transport.value() == b""
    proto.resumeProducing()
    assert b"\x0a\x80" in transport.value()


def test_two_protocols_over_iosim_replicate() -> None:
    clock = MemoryReactorClock()
    a, b = make_sync("hapA", clock), make_sync("hapB", clock)
    row = a.tables[0].table.get_or_create(0x0A000003)
    a.tables[0].table.set(row, "gpc0", 9)
    a.tables[0].table.touch_local(row)
    assert a.dials_due() == ["hapB"]
    client = PeerFactory(a, Owner(), "hapB").buildProtocol(None)
    server = PeerFactory(b, Owner()).buildProtocol(None)
    pump = iosim.connect(server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client))
    pump.flush()
    tb = b.tables[0].table
    assert tb.get(tb.lookup(0x0A000003), "gpc0") == 9
    clock.advance(3)
    a.tick()
    b.tick()
    client.flush()
    server.flush()
    pump.flush()
    assert a.peers["hapB"].rx_heartbeats == 1 and b.peers["hapA"].rx_heartbeats == 1


def test_service_dials_remote_peers_and_arms_one_timer() -> None:
    reactor = MemoryReactorClock()
    reactor.advance(100)
    section = PeersSection(
        BUILTIN,
        "p",
        peers=(
            Peer(BUILTIN, "hapA", Address("ipv4", "127.0.0.1", 20001)),
            Peer(BUILTIN, "hapB", Address("ipv4", "127.0.0.1", 20002)),
        ),
        bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", 20001), name="hapA"),
        local_peer="hapA",
    )
    table = StickTable(SPEC, reactor)
    service = PeersService(reactor, section, "hapA", [table], rng=random.Random(1), pid=7, listen=False)
    service.startService()
    assert [(host, port) for host, port, *_ in reactor.tcpClients] == [("127.0.0.1", 20002)]
    timers = [c for c in reactor.getDelayedCalls() if c.active()]
    assert len(timers) == 1 and timers[0].getTime() == 105.0  # one timer: the resync timer
    # the dial fails: a retry 1 s later
    factory = reactor.tcpClients[0][2]
    factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
    reactor.advance(1.0)
    assert len(reactor.tcpClients) == 2
    # a local change re-arms the timer for now
    row = table.get_or_create(1)
    table.touch_local(row)
    assert min(c.getTime() for c in reactor.getDelayedCalls() if c.active()) == reactor.seconds()
    service.stopService()
    assert not [c for c in reactor.getDelayedCalls() if c.active() and c.func == service._fire]


def section_ab() -> PeersSection:
    return PeersSection(
        BUILTIN,
        "mypeers",
        peers=(
            Peer(BUILTIN, "hapA", Address("ipv4", "127.0.0.1", 20001, text="127.0.0.1:20001")),
            Peer(BUILTIN, "hapB", Address("ipv4", "127.0.0.1", 20002, text="127.0.0.1:20002")),
        ),
        bind=Bind(BUILTIN, Address("ipv4", "127.0.0.1", 20001, text="127.0.0.1:20001"), name="hapA"),
        local_peer="hapA",
    )


def test_show_peers_command_on_the_stats_socket() -> None:
    from minilb.peers.service import register_show_peers
    from minilb.runtime.cli import CommandProcessor

    reactor = MemoryReactorClock()
    service = PeersService(reactor, section_ab(), "hapA", [StickTable(SPEC, reactor)], listen=False)
    processor = CommandProcessor()
    register_show_peers(processor, lambda: [service])
    out, _ = processor.session("admin").handle_line("show peers")
    assert ": id=mypeers disabled=0 flags=0x1 resync_timeout=5s" in out
    assert "id=hapA(local,inactive) addr=127.0.0.1:20001 last_status=NONE" in out
    assert "id=hapB(remote,inactive) addr=127.0.0.1:20002" in out
    assert processor.session("admin").handle_line("show peers other")[0].strip() == ""
    help_text = processor.session("admin").handle_line("help")[0]
    assert "show peers [dict|-] [section]" in help_text


def test_handover_deferred_fires_when_the_successor_confirms() -> None:
    reactor = MemoryReactorClock()
    reactor.advance(10)
    table = StickTable(SPEC, reactor)
    row = table.get_or_create(7)
    table.touch_local(row)
    old = PeersService(reactor, section_ab(), "hapA", [table], listen=False)
    old.startService()
    done = old.begin_handover()
    results: list = []
    done.addCallback(results.append)
    # the successor listens at the local peer's address
    assert ("127.0.0.1", 20001) in [(h, p) for h, p, *_ in reactor.tcpClients]
    new_sync = s.PeersSync(
        "hapA",
        ("hapA", "hapB"),
        [StickTable(SPEC, reactor)],
        reactor,
        random.Random(2),
        2,
        has_old_process=True,
    )
    client = reactor.tcpClients[-1][2].buildProtocol(None)
    server = PeerFactory(new_sync, Owner()).buildProtocol(None)
    pump = iosim.connect(server, iosim.makeFakeServer(server), client, iosim.makeFakeClient(client))
    for _ in range(5):
        pump.flush()
        old.changed()
    assert results == [True]
    assert new_sync.synced is False and new_sync.local_done  # PARTIAL: old was not synced
    tnew = new_sync.tables[0].table
    assert tnew.lookup(7) is not None


def test_section_tables_own_tables_first_then_proxy_tables() -> None:
    from minilb.peers.service import section_tables

    clock = MemoryReactorClock()
    own = TableSpec(BUILTIN, "mypeers/t_int", "/t_int", "integer", 4, 10, store=(StoreItem("gpc0"),))
    proxy = TableSpec(BUILTIN, "st_str", "st_str", "string", 33, 10, peers="mypeers")
    other = TableSpec(BUILTIN, "st_other", "st_other", "ip", 4, 10, peers="elsewhere")
    lonely = TableSpec(BUILTIN, "st_local", "st_local", "ip", 4, 10)
    tables = [StickTable(spec, clock) for spec in (proxy, other, lonely, own)]
    section = PeersSection(BUILTIN, "mypeers", tables=(own,))
    assert [t.spec.wire_name for t in section_tables(section, tables)] == ["/t_int", "st_str"]


def _big_read_setup(slice_cost: float):
    """A learner fed a 3000-update read whose every slice takes ``slice_cost`` seconds
    of its reactor's clock: (reactor, protocol, transport, table, wire)."""
    from minilb.peers import codec
    from minilb.peers import messages as m
    from minilb.peers.protocol import RECEIVE_SLICE

    reactor = MemoryReactorClock()
    big = TableSpec(
        BUILTIN, "st_ip", "st_ip", "ip", 4, 10000, expire=60000, peers="p", store=(StoreItem("gpc0"),)
    )
    sync = make_sync("hapA", reactor, big)
    owner = Owner()
    owner.reactor = reactor
    proto = PeerFactory(sync, owner).buildProtocol(None)
    receive = proto._receive

    def costly_receive(data: bytes) -> None:
        receive(data)
        reactor.rightNow += slice_cost

    proto._receive = costly_receive
    transport = StringTransport()
    proto.makeConnection(transport)
    enc = codec.Encoder()
    define = sync.tables[0].define
    wire = b"HAProxyS 2.1\nhapA\nhapB 1 1\n" + enc.encode(define)
    wire += b"".join(enc.encode(m.Update(i + 1, None, 0x0B000000 + i, (("gpc0", i),))) for i in range(3000))
    assert len(wire) > 2 * RECEIVE_SLICE
    return reactor, proto, transport, sync, wire


def test_big_reads_are_applied_in_slices_over_reactor_turns() -> None:
    from minilb.peers.protocol import RECEIVE_TURN

    reactor, proto, transport, sync, wire = _big_read_setup(RECEIVE_TURN / 2)
    proto.dataReceived(wire[:100])
    proto.dataReceived(wire[100:])
    table = sync.tables[0].table
    first = len(table)
    assert 0 < first < 3000 and transport.producerState == "paused"
    proto.dataReceived(b"\x00\x04")  # arrives meanwhile: kept behind the backlog
    while reactor.getDelayedCalls():
        reactor.advance(0)
    assert len(table) == 3000 and transport.producerState == "producing"
    assert sync.peers["hapB"].rx_heartbeats == 1


def test_slices_that_cost_little_are_applied_in_the_same_turn() -> None:
    reactor, proto, transport, sync, wire = _big_read_setup(0.0)
    proto.dataReceived(wire)
    assert len(sync.tables[0].table) == 3000 and not reactor.getDelayedCalls()
    assert transport.producerState == "producing"
