"""mode tcp: byte relay, connect retries, timeouts, backpressure, rules, tcplog."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock, StringTransport

from minilb.config.model import Proxy, Timeouts
from minilb.errors import BUILTIN
from minilb.http.backend import BackendRuntime
from minilb.http.balance import ServerState, make_balancer
from minilb.tcp.proxy import MAX_EARLY_DATA, TcpFrontend, TcpServer
from tests.support.http import Connector, FakeRules, server_model


class Sink:
    def __init__(self):
        self.lines = []

    def emit(self, line, level="info"):
        self.lines.append(line)


def make(timeouts=None, rules=None, sink=None, servers=None, **kw):
    reactor = MemoryReactorClock()
    px = Proxy(
        origin=BUILTIN,
        name="db",
        kind="listen",
        mode="tcp",
        servers=tuple(servers or [server_model("s1", 5432)]),
        timeouts=timeouts or Timeouts(connect=1000, client=10000, server=10000),
        **kw,
    )
    states = [ServerState.from_model(s, i + 1) for i, s in enumerate(px.servers)]
    connector = Connector()
    be = BackendRuntime(
        px, states, make_balancer(px.balance, states, random.Random(0)), reactor, connector=connector
    )
    fe = TcpFrontend(px, reactor, {"db": be}, rules, sink=sink)
    return reactor, connector, fe, be


def client(fe, src="10.1.1.1"):
    p = fe.buildProtocol(None)
    t = StringTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 5000), peerAddress=IPv4Address("TCP", src, 1234)
    )
    p.makeConnection(t)
    return p, t


def test_bytes_flow_both_ways_and_early_data_is_kept():
    reactor, connector, fe, be = make()
    c, ct = client(fe)
    c.dataReceived(b"hello ")
    c.dataReceived(b"server")
    server, factory, timeout = connector.attempts[0]
    assert timeout == 1.0
    side, st = connector.succeed()
    assert isinstance(side, TcpServer)
    assert st.value() == b"hello server"
    side.dataReceived(b"hi client")
    assert ct.value() == b"hi client"
    assert be.servers[0].cur_conns == 1
    side.connectionLost(None)
    assert ct.disconnecting
    c.connectionLost(None)
    assert be.servers[0].cur_conns == 0


def test_connect_retries_then_close():
    reactor, connector, fe, be = make(retries=1)
    c, ct = client(fe)
    connector.fail()
    reactor.advance(1.0)
    connector.fail()
    assert ct.disconnecting


def test_early_data_is_bounded():
    reactor, connector, fe, be = make()
    c, ct = client(fe)
    c.dataReceived(b"x" * (MAX_EARLY_DATA + 1))
    assert ct.producerState == "paused"
    connector.succeed()
    assert ct.producerState == "producing"


def test_backpressure_both_ways():
    reactor, connector, fe, be = make()
    c, ct = client(fe)
    side, st = connector.succeed()
    assert st.producer is c and ct.producer is side
    st.producer.pauseProducing()
    assert ct.producerState == "paused"
    ct.producer.pauseProducing()
    assert st.producerState == "paused"


def test_inactivity_timeout_closes_both():
    reactor, connector, fe, be = make(timeouts=Timeouts(connect=1000, client=3000, server=3000))
    c, ct = client(fe)
    side, st = connector.succeed()
    for _ in range(3):
        reactor.advance(2)
        c.dataReceived(b"ping")
    assert not ct.disconnecting
    for _ in range(7):
        reactor.advance(1)
    assert ct.disconnecting


def test_tunnel_timeout_overrides_client_timeout():
    reactor, connector, fe, be = make(timeouts=Timeouts(connect=1000, client=1000, server=1000, tunnel=60000))
    c, ct = client(fe)
    connector.succeed()
    reactor.advance(30)
    assert not ct.disconnecting


def test_tcp_request_connection_reject():
    rules = FakeRules(tcp_connection=lambda sess: sess.src.startswith("10."))
    reactor, connector, fe, be = make(rules=rules)
    c, ct = client(fe, src="192.168.0.1")
    assert ct.disconnecting
    assert connector.attempts == []
    c2, ct2 = client(fe, src="10.0.0.9")
    assert len(connector.attempts) == 1


def test_tcplog_line():
    sink = Sink()
    reactor, connector, fe, be = make(sink=sink, tcplog=True)
    c, ct = client(fe)
    side, st = connector.succeed()
    side.dataReceived(b"12345")
    reactor.advance(0.25)
    c.connectionLost(None)
    (line,) = sink.lines
    assert line.startswith("10.1.1.1:1234 [")
    assert line.endswith("] db db/s1 0/0/250 5 -- 0/0/0/0/0 0/0")


def test_no_server_up_closes():
    reactor, connector, fe, be = make()
    be.servers[0].up = False
    c, ct = client(fe)
    assert ct.disconnecting


class HalfCloseTransport(StringTransport):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.write_closed = False

    def loseWriteConnection(self):
        self.write_closed = True


def test_half_close_is_passed_on_both_ways():
    reactor, connector, fe, be = make()
    c = fe.buildProtocol(None)
    ct = HalfCloseTransport(
        hostAddress=IPv4Address("TCP", "127.0.0.1", 5000), peerAddress=IPv4Address("TCP", "10.1.1.1", 1)
    )
    c.makeConnection(ct)
    server, factory, _ = connector.attempts.pop()
    side = factory.buildProtocol(None)
    st = HalfCloseTransport()
    side.makeConnection(st)
    c.readConnectionLost()  # client sent FIN: the server gets it, the reply can still come back
    assert st.write_closed and not ct.disconnecting
    side.dataReceived(b"late answer")
    assert ct.value() == b"late answer"
    side.readConnectionLost()
    assert ct.write_closed


def test_send_proxy_in_tcp_mode():
    reactor, connector, fe, be = make(servers=[server_model("s1", 5432, send_proxy=True)])
    c, ct = client(fe)
    c.dataReceived(b"hello")
    side, st = connector.succeed()
    assert st.value() == b"PROXY TCP4 10.1.1.1 127.0.0.1 1234 5000\r\nhello"


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    actions=st.lists(
        st.sampled_from(
            ["client", "connect_ok", "connect_fail", "server", "server_close", "client_close", "tick"]
        ),
        max_size=20,
    )
)
def test_random_event_orders_never_raise_and_never_leak(actions):
    reactor, connector, fe, be = make(retries=1, timeouts=Timeouts(connect=1000, client=2000, server=2000))
    c, ct = client(fe)
    sides = []
    for action in actions:
        if action == "client" and c.open:
            c.dataReceived(b"data")
        elif action == "connect_ok" and connector.attempts:
            sides.append(connector.succeed(0))
        elif action == "connect_fail" and connector.attempts:
            connector.fail(0)
        elif action == "server" and sides and sides[-1][0].owner is not None:
            sides[-1][0].dataReceived(b"answer")
        elif action == "server_close" and sides:
            side, _ = sides.pop()
            side.connectionLost(None)
        elif action == "client_close":
            break
        elif action == "tick":
            reactor.advance(0.7)
    c.connectionLost(None)
    while connector.attempts:
        sides.append(connector.succeed(0))
    for side, _ in sides:
        side.connectionLost(None)
    assert fe.cur_conns == 0 and be.cur_conns == 0 and be.servers[0].cur_conns == 0


def test_a_closed_tunnel_is_freed_without_the_cycle_collector():
    import gc
    import weakref

    gc.collect()
    gc.disable()
    try:
        reactor, connector, fe, be = make()
        c, ct = client(fe)
        c.dataReceived(b"ping")
        side, st = connector.succeed()
        side.dataReceived(b"pong")
        assert st.value() == b"ping" and ct.value() == b"pong"
        refs = [weakref.ref(c), weakref.ref(side)]
        # as a real transport does when it reports the close: it drops its producer
        st.producer = None
        side.connectionLost(None)
        ct.producer = None
        c.connectionLost(None)
        del c, ct, side, st
        assert [r() for r in refs if r() is not None] == []
    finally:
        gc.enable()
