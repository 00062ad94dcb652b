"""WorkerService: the object graph built from a Config, and one in-process loopback
run through real sockets (bounded in time)."""

from __future__ import annotations

import pytest_twisted
from twisted.internet import defer, protocol
from twisted.internet.testing import MemoryReactorClock

from minilb.config.load import load_config
from minilb.http.frontend import FrontendRuntime
from minilb.tcp.proxy import TcpFrontend
from minilb.worker.service import WorkerService


def load(tmp_path, text):
    path = tmp_path / "t.cfg"
    path.write_text(text)
    config, _warnings = load_config([str(path)])
    return config


CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:{port}
    use_backend api if {{ path_beg /api }}
    default_backend site
backend api
    server a1 127.0.0.1:{origin}
backend site
    option forwardfor
    server s1 127.0.0.1:{origin}
listen db
    mode tcp
    bind 127.0.0.1:{tcp_port}
    server d1 127.0.0.1:{origin}
"""


def test_graph_is_built_once(tmp_path):
    config = load(tmp_path, CFG.format(port=1, origin=2, tcp_port=3))
    svc = WorkerService(config, MemoryReactorClock(), log=lambda level, msg: None)
    assert set(svc.backends) == {"api", "site", "db"}
    kinds = {px.name: type(f) for px, f in svc.frontends}
    assert kinds == {"web": FrontendRuntime, "db": TcpFrontend}
    web = dict((px.name, f) for px, f in svc.frontends)["web"]
    assert web.default_backend is svc.backends["site"]
    assert web.has_use_backend and not web.has_http_request
    assert web.xff["site"] is not None and web.xff["api"] is None
    assert web.sink is None  # no log target: no logging work at all


class Origin(protocol.Protocol):
    """Answers every request with its own path and the x-forwarded-for it saw."""

    def connectionMade(self):
        self.buf = b""

    def dataReceived(self, data):
        self.buf += data
        while b"\r\n\r\n" in self.buf:
            head, _, rest = self.buf.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            length = 0
            chunked = False
            xff = b"-"
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
                if name.lower() == b"transfer-encoding":
                    chunked = True
                if name.lower() == b"x-forwarded-for":
                    xff = value.strip()
            if chunked:  # enough for the single-chunk bodies sent here
                if b"0\r\n\r\n" not in rest:
                    return
                chunks, _, self.buf = rest.partition(b"0\r\n\r\n")
                body = chunks.split(b"\r\n")[1] if chunks else b""
            else:
                if len(rest) < length:
                    return
                body, self.buf = rest[:length], rest[length:]
            answer = lines[0].split(b" ")[1] + b" " + xff + b" " + body
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer))


class Client(protocol.Protocol):
    def __init__(self):
        self.data = b""
        self.done = defer.Deferred()

    def dataReceived(self, data):
        self.data += data

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.callback(self.data)


@pytest_twisted.inlineCallbacks
def test_loopback_http_and_tcp(tmp_path, free_port):
    from twisted.internet import reactor

    origin_port = reactor.listenTCP(0, protocol.Factory.forProtocol(Origin), interface="127.0.0.1")
    origin = origin_port.getHost().port
    with_tcp = _another_free_port(free_port)
    config = load(tmp_path, CFG.format(port=free_port, origin=origin, tcp_port=with_tcp))
    svc = WorkerService(config, reactor, log=lambda level, msg: None)
    svc.startService()
    try:
        client = Client()
        yield protocol.ClientCreator(reactor, lambda: client).connectTCP("127.0.0.1", free_port)
        client.transport.write(
            b"GET /api/x HTTP/1.1\r\nHost: a\r\n\r\n"
            b"POST /page HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        )
        data = yield client.done.addTimeout(5, reactor)
        bodies = [part.split(b"\r\n\r\n", 1)[1] for part in data.split(b"HTTP/1.1 200 OK\r\n")[1:]]
        assert bodies == [b"/api/x - ", b"/page 127.0.0.1 abc", b"/last 127.0.0.1 "]
        tcp_client = Client()
        yield protocol.ClientCreator(reactor, lambda: tcp_client).connectTCP("127.0.0.1", with_tcp)
        tcp_client.transport.write(b"GET /raw HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        yield _wait_for(lambda: b"/raw" in tcp_client.data, reactor)
        assert tcp_client.data == b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n/raw - "
        tcp_client.transport.loseConnection()
    finally:
        yield svc.stopService()
        yield origin_port.stopListening()


def _another_free_port(taken: int) -> int:
    import socket

    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port != taken:
            return port


def _wait_for(predicate, reactor, timeout=5.0):
    d = defer.Deferred()
    deadline = reactor.seconds() + timeout

    def poll():
        if predicate():
            d.callback(None)
        elif reactor.seconds() > deadline:
            d.errback(TimeoutError("condition not met"))
        else:
            reactor.callLater(0.01, poll)

    poll()
    return d


def test_stop_without_start_is_harmless(tmp_path):
    config = load(tmp_path, CFG.format(port=1, origin=2, tcp_port=3))
    clock = MemoryReactorClock()
    svc = WorkerService(config, clock, log=lambda level, msg: None)
    d = svc.stopService()
    clock.advance(0.1)
    assert d.called


def test_accept_proxy_binds_read_the_proxy_header_first():
    from twisted.internet.testing import StringTransport

    from minilb.config.model import Address, Bind
    from minilb.errors import BUILTIN
    from minilb.worker.service import bind_factory
    from tests.support.http import Harness

    h = Harness()
    plain = Bind(BUILTIN, Address("ipv4", "127.0.0.1", 80))
    assert bind_factory(plain, h.fe) is h.fe
    wrapped = bind_factory(Bind(BUILTIN, Address("ipv4", "127.0.0.1", 80), accept_proxy=True), h.fe)
    proto = wrapped.buildProtocol(None)
    transport = StringTransport()
    proto.makeConnection(transport)
    proto.dataReceived(b"PROXY TCP4 192.0.2.7 10.0.0.1 56324 80\r\nGET / HTTP/1.1\r\n\r\n")
    assert h.connector.attempts, "the request went on to a server"
    client = next(iter(h.fe.connections))
    assert (client.sess.src, client.sess.src_port) == ("192.0.2.7", 56324)


def test_proxy_header_split_bad_or_missing():
    from twisted.internet.testing import StringTransport

    from minilb.tcp.proxyproto import ProxyHeaderFactory
    from tests.support.http import Harness

    h = Harness()
    factory = ProxyHeaderFactory(h.fe)
    proto = factory.buildProtocol(None)
    proto.makeConnection(StringTransport())
    proto.dataReceived(b"PROXY TCP4 192.0.2.7 ")
    assert not h.fe.connections  # not started before the whole header
    proto.dataReceived(b"10.0.0.1 1000 80\r\nGET / HTTP/1.1\r\n\r\n")
    (client,) = h.fe.connections
    assert client.sess.src == "192.0.2.7"
    bad = factory.buildProtocol(None)
    t = StringTransport()
    bad.makeConnection(t)
    bad.dataReceived(b"GET / HTTP/1.1\r\n\r\n")
    assert t.disconnecting and len(h.fe.connections) == 1
    gone = factory.buildProtocol(None)
    gone.makeConnection(StringTransport())
    gone.connectionLost(None)  # closed before any header: nothing to undo
    assert len(h.fe.connections) == 1


EXPIRY_CFG = """
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:1
    http-request track-sc0 src table rl
    default_backend site
backend rl
    stick-table type ip size 1k expire 10s store http_req_rate(10s)
backend site
    server s1 127.0.0.1:2
"""


def test_tables_expire_entries_once_started(tmp_path):
    config = load(tmp_path, EXPIRY_CFG)
    clock = MemoryReactorClock()
    svc = WorkerService(config, clock, log=lambda level, msg: None)
    table = svc.tables["rl"]
    svc.startService()
    try:
        row = table.get_or_create(table.normalize_key("10.0.0.1"))
        assert row is not None and len(table) == 1
        clock.advance(5)
        assert len(table) == 1  # not yet due
        for _ in range(7):  # past 10 s, in the expiry timer's steps
            clock.advance(1)
        assert len(table) == 0
    finally:
        svc.stopService()
    assert not [c for c in clock.getDelayedCalls() if c.active() and c.func == svc.expiry.run]
