"""Helpers for the HTTP/TCP data-path tests: model objects with defaults, fake rules,
a recording connector, and client/server transports on StringTransport."""

from __future__ import annotations

import random

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.python.failure import Failure

from minilb.config.model import Address, Balance, ForwardFor, Proxy, Server, Timeouts
from minilb.errors import BUILTIN
from minilb.http.backend import BackendRuntime
from minilb.http.balance import ServerState, make_balancer
from minilb.http.frontend import FrontendRuntime


def server_model(name="s1", port=8001, **kw) -> Server:
    return Server(origin=BUILTIN, name=name, address=Address("ipv4", "127.0.0.1", port), **kw)


def proxy(name="px", kind="listen", servers=(), timeouts=None, **kw) -> Proxy:
    return Proxy(
        origin=BUILTIN,
        name=name,
        kind=kind,
        mode="http",
        servers=tuple(servers),
        timeouts=timeouts or Timeouts(connect=5000, client=30000, server=30000),
        **kw,
    )


class Connector:
    """Records connect attempts; tests decide how each one ends."""

    def __init__(self):
        self.attempts = []  # (server, factory, timeout)

    def __call__(self, reactor, server, factory, timeout):
        self.attempts.append((server, factory, timeout))

    def succeed(self, index=-1):
        """Complete an attempt: returns (ServerConnection, its StringTransport)."""
        server, factory, _ = self.attempts.pop(index)
        conn = factory.buildProtocol(None)
        transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", server.address.port))
        conn.makeConnection(transport)
        return conn, transport

    def fail(self, index=-1):
        server, factory, _ = self.attempts.pop(index)
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        return server


class FakeRules:
    """A ProxyRules stand-in driven by plain callables."""

    def __init__(
        self,
        http_request=None,
        http_response=None,
        http_after_response=None,
        tcp_connection=None,
        tcp_content=None,
        select_backend=None,
    ):
        self._req = http_request
        self._resp = http_response
        self._after = http_after_response
        self._tcpc = tcp_connection
        self._tcpt = tcp_content
        self._sel = select_backend
        self.has_http_request = http_request is not None
        self.has_http_response = http_response is not None
        self.has_http_after_response = http_after_response is not None
        self.has_tcp_connection = tcp_connection is not None
        self.has_tcp_content = tcp_content is not None
        self.has_use_backend = select_backend is not None

    def http_request(self, txn):
        return self._req(txn)

    def http_response(self, txn):
        return self._resp(txn)

    def http_after_response(self, txn):
        return self._after(txn)

    def tcp_connection(self, sess):
        return self._tcpc(sess)

    def tcp_content(self, sess, txn=None):
        return self._tcpt(sess)

    def select_backend(self, txn):
        return self._sel(txn)


class Harness:
    """One listen proxy (or frontend + backends) on a MemoryReactorClock."""

    def __init__(
        self, px: Proxy | None = None, *, backends=(), rules=None, sink=None, tracking=None, limits=None
    ):
        self.reactor = MemoryReactorClock()
        self.connector = Connector()
        self.px = px or proxy(servers=[server_model()])
        self.backends = {}
        for be_proxy in (self.px, *backends) if self.px.is_backend else tuple(backends):
            states = [ServerState.from_model(s, i + 1) for i, s in enumerate(be_proxy.servers)]
            balancer = make_balancer(be_proxy.balance, states, random.Random(1))
            self.backends[be_proxy.name] = BackendRuntime(
                be_proxy, states, balancer, self.reactor, connector=self.connector, limits=limits
            )
        self.fe = FrontendRuntime(
            self.px, self.reactor, self.backends, rules, sink=sink, tracking=tracking, limits=limits
        )

    def backend(self, name=None):
        return self.backends[name or self.px.name]

    def server(self, name="s1", backend=None):
        for s in self.backend(backend).servers:
            if s.name == name:
                return s
        raise KeyError(name)

    def client(self, src="10.0.0.1", port=40000):
        proto = self.fe.buildProtocol(None)
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=IPv4Address("TCP", src, port)
        )
        proto.makeConnection(transport)
        return proto, transport


def take(transport: StringTransport) -> bytes:
    data = transport.value()
    transport.clear()
    return data


__all__ = [
    "Balance",
    "ForwardFor",
    "Timeouts",
    "Harness",
    "FakeRules",
    "Connector",
    "proxy",
    "server_model",
    "take",
]


class ConfigHarness:
    """A real `WorkerService` object graph built from config text (compiled rules,
    stick tables), on a MemoryReactorClock, with every backend dialing through one
    recording `Connector`."""

    def __init__(self, tmp_path, text: str):
        from minilb.config.load import load_config
        from minilb.worker.service import WorkerService

        path = tmp_path / "h.cfg"
        path.write_text(text)
        config, _warnings = load_config([str(path)])
        self.reactor = MemoryReactorClock()
        self.service = WorkerService(config, self.reactor, log=lambda level, msg: None, rng=random.Random(1))
        self.connector = Connector()
        for be in self.service.backends.values():
            be.connector = self.connector
        self.tables = self.service.tables

    def frontend(self, name: str):
        return next(f for px, f in self.service.frontends if px.name == name)

    def client(self, frontend: str, src="10.0.0.1", port=40000):
        proto = self.frontend(frontend).buildProtocol(None)
        transport = StringTransport(
            hostAddress=IPv4Address("TCP", "127.0.0.1", 80), peerAddress=IPv4Address("TCP", src, port)
        )
        proto.makeConnection(transport)
        return proto, transport
