"""The lean TCP transports of FastEPollReactor (minilb.tcp.lean), on a private reactor
instance driven turn by turn over 127.0.0.1: accepting, dialling, closing (orderly,
with buffered data, abortive), the calls made soon, adopted listening sockets."""

from __future__ import annotations

import errno
import socket

import pytest
from twisted.internet import error, protocol
from twisted.python import log

from minilb.tcp.lean import LeanClient, LeanConnector, LeanPort, LeanServer
from minilb.tcp.reactor import FastEPollReactor


@pytest.fixture
def reactor():
    r = FastEPollReactor()
    yield r
    for selectable in r.removeAll():
        try:
            selectable.connectionLost(None)
        except Exception:
            pass
    r._poller.close()


def spin(reactor, done, turns: int = 400) -> None:
    """Run loop turns until ``done()`` (bounded)."""
    for _ in range(turns):
        if done():
            return
        reactor.iterate(0.01)
    assert done(), "the loop did not get there"


class Recorder(protocol.Protocol):
    """Keeps what it sees; ``script`` says what to do once connected."""

    def __init__(self, script=None):
        self.script = script
        self.data = b""
        self.made = False
        self.lost = None
        self.events: list[str] = []

    def connectionMade(self):
        self.made = True
        self.events.append("made")
        if self.script is not None:
            self.script(self)

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        self.events.append("lost")
        self.lost = reason


class Built(protocol.Factory):
    def __init__(self, script=None):
        self.script = script
        self.built: list[Recorder] = []

    def buildProtocol(self, addr):
        p = Recorder(self.script)
        p.factory = self
        p.addr = addr
        self.built.append(p)
        return p


class Dialled(protocol.ClientFactory):
    def __init__(self, script=None):
        self.script = script
        self.built: list[Recorder] = []
        self.failed = None

    def buildProtocol(self, addr):
        p = Recorder(self.script)
        self.built.append(p)
        return p

    def clientConnectionFailed(self, connector, reason):
        self.failed = reason


def receive(reactor, sock: socket.socket, expected: bytes) -> bytes:
    """Run the loop until ``sock`` has received ``len(expected)`` bytes; return them."""
    sock.setblocking(False)
    got = bytearray()

    def arrived():
        try:
            got.extend(sock.recv(65536))
        except BlockingIOError:
            pass
        return len(got) >= len(expected)

    spin(reactor, arrived)
    return bytes(got)


def read_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    out = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return out
        out += chunk


# --------------------------------------------------------------------------- accepting


def test_accepts_into_lean_transports_with_the_local_address_of_the_listener(reactor):
    factory = Built(lambda p: p.transport.write(b"hello"))
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    assert isinstance(port, LeanPort)
    addr = port.getHost()
    clients = [socket.create_connection(("127.0.0.1", addr.port)) for _ in range(3)]
    try:
        spin(reactor, lambda: len(factory.built) == 3)
        for p, c in zip(factory.built, clients, strict=True):
            t = p.transport
            assert isinstance(t, LeanServer)
            assert t.getHost() == addr  # the listener's address, no getsockname per connection
            assert t.getHost().port == t.socket.getsockname()[1]
            assert (t.getPeer().host, t.getPeer().port) == c.getsockname()
            assert p.addr is t.getPeer()  # the address given to buildProtocol, not a new one
            assert "Recorder" in t.logPrefix() and repr(t).startswith("<Recorder #")
        for c in clients:
            assert receive(reactor, c, b"hello") == b"hello"
    finally:
        for c in clients:
            c.close()
        port.stopListening()


def test_a_wildcard_listener_asks_each_socket_for_its_local_address(reactor):
    factory = Built()
    port = reactor.listenTCP(0, factory, interface="0.0.0.0")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built)
        host = factory.built[0].transport.getHost()
        assert (host.host, host.port) == ("127.0.0.1", port.getHost().port)
    finally:
        c.close()
        port.stopListening()


def test_an_adopted_listening_socket_accepts_through_a_lean_port(reactor):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(10)
    lsock.setblocking(False)
    factory = Built(lambda p: p.transport.write(b"adopted"))
    port = reactor.adoptStreamPort(lsock.fileno(), socket.AF_INET, factory)
    lsock.close()  # the port holds its own duplicate
    assert isinstance(port, LeanPort)
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built)
        assert receive(reactor, c, b"adopted") == b"adopted"
    finally:
        c.close()
        port.stopListening()


def test_ipv6_listener(reactor):
    try:
        port = reactor.listenTCP(0, Built(lambda p: p.transport.write(b"six")), interface="::1")
    except Exception:
        pytest.skip("no IPv6 loopback here")
    c = socket.create_connection(("::1", port.getHost().port))
    try:
        spin(reactor, lambda: port.factory.built)
        t = port.factory.built[0].transport
        assert t.getPeer().host == "::1" and t.getHost().port == port.getHost().port
        assert receive(reactor, c, b"six") == b"six"
    finally:
        c.close()
        port.stopListening()


# --------------------------------------------------------------------------- closing


def test_lose_connection_closes_after_the_call_returns_and_the_peer_gets_every_byte(reactor):
    seen = []

    def answer_and_close(p):
        p.transport.write(b"bye")
        p.transport.loseConnection()
        seen.append(list(p.events))  # connectionLost has not run inside loseConnection
        p.transport.write(b" again")  # written before the turn ends: still sent

    factory = Built(answer_and_close)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built and factory.built[0].lost is not None)
        assert seen == [["made"]]
        assert factory.built[0].lost.check(error.ConnectionDone)
        assert read_all(c) == b"bye again"
    finally:
        c.close()
        port.stopListening()


def test_lose_connection_flushes_a_buffer_the_kernel_did_not_take(reactor):
    big = bytes(range(256)) * 40000  # 10 MB: more than the socket buffers hold

    def send_big(p):
        p.transport.write(big)
        p.transport.loseConnection()

    factory = Built(send_big)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    c.setblocking(False)
    got = bytearray()
    try:

        def drained():
            try:
                while True:
                    chunk = c.recv(1 << 20)
                    if not chunk:
                        return True
                    got.extend(chunk)
            except BlockingIOError:
                return False

        spin(reactor, drained, turns=5000)
        assert bytes(got) == big
        assert factory.built[0].lost.check(error.ConnectionDone)
    finally:
        c.close()
        port.stopListening()


class Producer:
    def __init__(self):
        self.calls = []

    def pauseProducing(self):
        self.calls.append("pause")

    def resumeProducing(self):
        self.calls.append("resume")

    def stopProducing(self):
        self.calls.append("stop")


def test_lose_connection_with_a_producer_takes_twisteds_path_and_stops_the_producer(reactor):
    producer = Producer()

    def produce_then_close(p):
        p.transport.registerProducer(producer, True)
        p.transport.write(b"streamed")
        p.transport.loseConnection()

    factory = Built(produce_then_close)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built and factory.built[0].lost is not None)
        assert factory.built[0].lost.check(error.ConnectionDone)
        assert producer.calls[-1] == "stop"
        assert read_all(c) == b"streamed"
    finally:
        c.close()
        port.stopListening()


def test_abort_resets_the_connection(reactor):
    def abort(p):
        p.transport.write(b"never mind")
        p.transport.abortConnection()
        p.transport.abortConnection()  # twice is harmless

    factory = Built(abort)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built and factory.built[0].lost is not None)
        assert factory.built[0].lost.check(error.ConnectionAborted)
        c.settimeout(5)
        with pytest.raises(ConnectionResetError):
            read_all(c)
    finally:
        c.close()
        port.stopListening()


def test_the_peer_closing_first_is_connection_done(reactor):
    factory = Built()
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")
    c = socket.create_connection(("127.0.0.1", port.getHost().port))
    try:
        spin(reactor, lambda: factory.built)
        c.sendall(b"last words")
        c.close()
        spin(reactor, lambda: factory.built[0].lost is not None)
        assert factory.built[0].data == b"last words"
        assert factory.built[0].lost.check(error.ConnectionDone)
    finally:
        port.stopListening()


# --------------------------------------------------------------------------- dialling


@pytest.fixture
def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(10)
    yield s
    s.close()


def test_dialling_an_ipv4_literal_connects_after_connect_tcp_returns(reactor, listener):
    def greet(p):
        p.transport.write(b"ping")

    factory = Dialled(greet)
    connector = reactor.connectTCP("127.0.0.1", listener.getsockname()[1], factory, timeout=5)
    assert isinstance(connector, LeanConnector)
    assert factory.built == []  # never inside connectTCP
    spin(reactor, lambda: factory.built and factory.built[0].made)
    t = factory.built[0].transport
    assert isinstance(t, LeanClient)
    assert connector.state == "connected"
    peer, _ = listener.accept()
    try:
        assert receive(reactor, peer, b"ping") == b"ping"
        assert (t.getPeer().host, t.getPeer().port) == listener.getsockname()
        assert (t.getHost().host, t.getHost().port) == peer.getpeername()
        assert t.logPrefix() == "Recorder,client"
        peer.sendall(b"pong")
        spin(reactor, lambda: factory.built[0].data == b"pong")
        t.loseConnection()
        spin(reactor, lambda: factory.built[0].lost is not None)
        assert factory.built[0].lost.check(error.ConnectionDone)
        assert read_all(peer) == b""
    finally:
        peer.close()


def test_a_refused_dial_fails_through_the_factory(reactor):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    factory = Dialled()
    reactor.connectTCP("127.0.0.1", closed_port, factory, timeout=5)
    assert factory.failed is None
    spin(reactor, lambda: factory.failed is not None)
    assert factory.failed.check(error.ConnectionRefusedError)
    assert factory.built == []


def test_stop_connecting_before_the_turn_ends(reactor, listener):
    factory = Dialled()
    connector = reactor.connectTCP("127.0.0.1", listener.getsockname()[1], factory, timeout=5)
    connector.stopConnecting()
    spin(reactor, lambda: factory.failed is not None)
    reactor.iterate(0)
    assert factory.failed.check(error.UserError)
    assert factory.built == []


def test_a_dial_still_in_progress_waits_for_writability(reactor, listener, monkeypatch):
    """The path of remote servers: the second connect says the handshake is under way."""
    calls = []
    real = socket.socket.connect_ex

    def slow_connect_ex(self, address):
        calls.append(address)
        result = real(self, address)
        return errno.EALREADY if len(calls) == 2 else result

    monkeypatch.setattr(socket.socket, "connect_ex", slow_connect_ex)
    factory = Dialled(lambda p: p.transport.write(b"late"))
    connector = reactor.connectTCP("127.0.0.1", listener.getsockname()[1], factory, timeout=5)
    armed = connector.timeoutID
    assert armed is not None and armed.active()  # a connect timeout is armed
    spin(reactor, lambda: factory.built and factory.built[0].made)
    assert armed.cancelled and connector.timeoutID is None
    peer, _ = listener.accept()
    try:
        assert receive(reactor, peer, b"late") == b"late"
    finally:
        peer.close()


def test_names_and_bind_addresses_take_twisteds_connector(reactor, listener):
    factory = Dialled()
    c = reactor.connectTCP("localhost", listener.getsockname()[1], factory, timeout=5)
    assert not isinstance(c, LeanConnector)
    c.stopConnecting()
    c = reactor.connectTCP(
        "127.0.0.1", listener.getsockname()[1], factory, timeout=5, bindAddress=("127.0.0.1", 0)
    )
    assert not isinstance(c, LeanConnector)
    c.stopConnecting()
    reactor.iterate(0)


# --------------------------------------------------------------------------- soon


def test_calls_made_soon_run_at_the_end_of_the_turn_in_order_and_errors_are_logged(reactor):
    order = []
    errors = []

    def observer(event):
        if event.get("isError"):
            errors.append(event)

    def boom():
        raise RuntimeError("soon boom")

    reactor.callSoon(order.append, 1)
    reactor.callSoon(boom)
    reactor.callSoon(order.append, 2)
    assert order == []
    log.addObserver(observer)
    try:
        reactor.iterate(0)
    finally:
        log.removeObserver(observer)
    assert order == [1, 2]
    assert any("soon boom" in str(e.get("failure").value) for e in errors if e.get("failure"))


def test_a_call_queued_by_a_timer_keeps_the_loop_from_sleeping_and_runs_before_timers(reactor):
    order = []
    reactor.callLater(0, reactor.callSoon, order.append, "soon")
    reactor.runUntilCurrent()  # the timer fires and queues a call
    assert order == [] and reactor.timeout() == 0  # the next poll must not sleep
    reactor.callLater(0, order.append, "timer")
    reactor.iterate(0)
    assert order == ["soon", "timer"]  # queued calls go before the timers of the turn
