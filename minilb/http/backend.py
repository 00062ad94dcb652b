"""Owns the server side of HTTP proxying: connections to servers and the idle pool.

`BackendRuntime` is everything the data path needs about one backend, computed once
from the configuration (timeouts in seconds, retries, connection mode, reuse policy,
error pages) plus its run-time state: the servers, the balancer, one `IdlePool` per
server and the queue of requests waiting for a server slot (``maxconn``).

`ServerConnection` is the Twisted protocol of one connection to a server.  It is
lent to one frontend request at a time (its ``owner``); it frames the response with
`minilb.http.parse.ResponseParser` and hands head, body and end to the owner, and
goes back to its server's `IdlePool` afterwards when the response allows keep-alive.
It carries one timer: ``timeout server`` while it waits or streams, the pool's idle
limit while it sits in the pool.
"""

from __future__ import annotations

import collections

from twisted.internet import protocol
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

from minilb.errors import HTTPError
from minilb.http.parse import Limits, ResponseParser
from minilb.stick import persistence
from minilb.tcp.io import direct_writer
from minilb.tcp.proxyproto import proxy_v1_header
from minilb.tcp.timer import ConnTimer

#: how long an idle server connection stays in the pool (HAProxy's pool-purge-delay).
POOL_IDLE_SECONDS = 5.0
#: idle connections kept per server; more are closed when released.
POOL_MAX_IDLE = 256
#: requests that may wait for a server slot per backend (beyond: 503 at once).
MAX_QUEUE = 10000
#: the rules of a backend that tie a client to a server (minilb.stick.persistence)
STICK_KEYWORDS = ("stick on", "stick match", "stick store-request")


def server_address(server) -> str:
    """``host:port`` of a server, as ``srvkey addr`` stores it."""
    addr = server.address
    if addr is None:
        return ""
    return f"{addr.host}:{addr.port}" if addr.is_inet else str(addr)


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


def connection_mode(frontend, backend) -> str:
    """The effective HTTP connection mode of a frontend/backend pair, as HAProxy
    combines them: ``close`` wins over ``server-close``, which wins over ``keep-alive``."""
    modes = (frontend.http_connection_mode, backend.http_connection_mode)
    if "close" in modes:
        return "close"
    if "server-close" in modes:
        return "server-close"
    return "keep-alive"


class IdlePool:
    """Idle keep-alive connections to one server, most recently used first out."""

    __slots__ = ("idle", "max_idle")

    def __init__(self, max_idle: int = POOL_MAX_IDLE):
        self.idle: list[ServerConnection] = []
        self.max_idle = max_idle

    def take(self) -> ServerConnection | None:
        idle = self.idle
        while idle:
            conn = idle.pop()
            if conn.usable():
                return conn
        return None

    def put(self, conn: ServerConnection) -> bool:
        if len(self.idle) >= self.max_idle:
            return False
        self.idle.append(conn)
        return True

    def discard(self, conn: ServerConnection) -> None:
        try:
            self.idle.remove(conn)
        except ValueError:
            pass

    def close_all(self) -> None:
        idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


class BackendRuntime:
    """One backend (or the backend half of a listen section), ready for requests."""

    def __init__(self, proxy, servers, balancer, reactor, *, limits: Limits | None = None, connector=None):
        self.proxy = proxy
        self.name = proxy.name
        self.servers = list(servers)
        self.balancer = balancer
        self.reactor = reactor
        self.limits = limits or Limits()
        t = proxy.timeouts
        self.connect_timeout = _seconds(t.connect) or 5.0  # HAProxy warns and uses 5s... we pick 5s
        self.server_timeout = _seconds(t.server)
        self.queue_timeout = _seconds(t.queue if t.queue is not None else t.connect)
        self.tunnel_timeout = _seconds(t.tunnel if t.tunnel is not None else t.server)
        self.retries = proxy.retries
        self.redispatch = proxy.redispatch
        self.reuse = proxy.http_reuse
        self.forwardfor = proxy.forwardfor
        self.errorfiles = {e.status: e.content for e in proxy.errorfiles}
        self.pools: dict[str, IdlePool] = {s.name: IdlePool() for s in self.servers}
        self.queue: collections.deque = collections.deque()
        self.cur_conns = 0  # connections in use by requests (beconn)
        self.connector = connector or connect_server
        self.sticky = False  # stick on/match/store-request rules exist (see `rules`)
        self.rules = None  # the backend's own compiled rules (set by the worker service)
        algorithm = proxy.balance.algorithm
        self.needs_txn = algorithm.startswith(("uri", "url_param", "hdr"))  # or use-server rules
        self.single = self.servers[0] if len(self.servers) == 1 else None
        #: servers with ``send-proxy``: their connections carry one client's address,
        #: so they stay private to that client (never in the shared pool)
        self.send_proxy = {s.name: True for s in self.servers if s.model is not None and s.model.send_proxy}
        self.total_requests = 0

    @property
    def rules(self):
        """The backend's own compiled rules (``ProxyRules``) or None."""
        return self._rules

    @rules.setter
    def rules(self, rules) -> None:
        self._rules = rules
        extra = getattr(rules, "extra", None) or {}
        self.sticky = any(extra.get(kw) for kw in STICK_KEYWORDS)
        #: some http-response or http-after-response rule of its own runs on responses
        self.response_rules = bool(
            getattr(rules, "has_http_response", False) or getattr(rules, "has_http_after_response", False)
        )

    # -- servers ---------------------------------------------------------------------
    def persistent_server(self, sess, txn):
        """The server the ``stick match``/``stick on`` rules name for this request,
        when it can take it (up, or ``option persist``; not at its maxconn), else None."""
        found = persistence.lookup(self._rules, sess, txn)
        if found is None:
            return None
        server_id, server_key = found
        server = None
        if server_key:
            for s in self.servers:
                if s.name == server_key or server_address(s) == server_key:
                    server = s
                    break
        if server is None and server_id is not None:
            for s in self.servers:
                if s.id == server_id:
                    server = s
                    break
        if server is None or server.full or server.disabled:
            return None
        if not server.up and not self.proxy.option("persist"):
            return None
        return server

    def pick(self, txn, src: str, exclude: frozenset = frozenset()):
        single = self.single
        if single is not None:  # the common one-server backend, without the balancer
            # (the slots behind ServerState's up/weight/full properties, read directly)
            maxconn = single.maxconn
            if (
                single._up
                and single._weight > 0
                and (maxconn is None or maxconn <= 0 or single.cur_conns < maxconn)
                and (not exclude or single.name not in exclude)
            ):
                return single
            return None
        return self.balancer.pick(txn, src, exclude)

    @property
    def has_use_server(self) -> bool:
        rules = self.rules
        return rules is not None and getattr(rules, "has_use_server", False)

    def server_named(self, name: str):
        for s in self.servers:
            if s.name == name:
                return s
        return None

    def all_full(self) -> bool:
        """True when some server is up but every up one is at its maxconn (queue, not 503)."""
        some_up = False
        for s in self.servers:
            if s.up:
                some_up = True
                if s.maxconn is None or s.cur_conns < s.maxconn:
                    return False
        return some_up

    def take_idle(self, server) -> ServerConnection | None:
        pool = self.pools.get(server.name)
        if pool is None:
            return None
        idle = pool.idle
        while idle:
            conn = idle.pop()
            if conn.connected and conn.idle:
                return conn
        return None

    def connect(self, server, requester, protocol_class=None) -> None:
        """Open a new connection to ``server``; the requester hears ``server_connected(conn)``
        or ``server_connect_failed(server, reason)``.  ``protocol_class(backend, server)``
        builds the connection's protocol (`ServerConnection` unless told otherwise)."""
        factory = ServerConnector(self, server, requester, protocol_class or ServerConnection)
        self.connector(self.reactor, server, factory, self.connect_timeout)

    # -- queue (maxconn) -------------------------------------------------------------
    def enqueue(self, waiter) -> bool:
        if len(self.queue) >= MAX_QUEUE:
            return False
        self.queue.append(waiter)
        return True

    def dequeue(self, waiter) -> None:
        try:
            self.queue.remove(waiter)
        except ValueError:
            pass

    def slot_freed(self) -> None:
        """A server connection stopped serving a request: let a queued request try again."""
        if self.queue:
            self.queue.popleft().queue_ready()

    def stop(self) -> None:
        for pool in self.pools.values():
            pool.close_all()


def connect_server(reactor, server, factory, timeout: float) -> None:
    """Plain TCP straight through the reactor (fast path); TLS and unix sockets through
    `minilb.net.endpoints.connect_server`."""
    addr = server.address
    if not server.tls.enabled and addr is not None and addr.is_inet:
        host = addr.host.strip("[]") or ("::1" if addr.family == "ipv6" else "127.0.0.1")
        reactor.connectTCP(host, addr.port, factory, timeout=timeout)
        return
    if addr is not None and addr.family == "unix" and not server.tls.enabled:
        reactor.connectUNIX(addr.path, factory, timeout=timeout)
        return
    from minilb.net import endpoints  # TLS, abns, names: the servers engineer's module

    d = endpoints.connect_server(reactor, server, factory, timeout)
    d.addErrback(lambda failure: factory.clientConnectionFailed(None, failure))


class ServerConnector(protocol.ClientFactory):
    """Builds the `ServerConnection` for one connect attempt and reports the outcome."""

    noisy = False

    def __init__(self, backend: BackendRuntime, server, requester, protocol_class):
        self.backend = backend
        self.server = server
        self.requester = requester
        self.protocol_class = protocol_class

    def buildProtocol(self, addr):
        conn = self.protocol_class(self.backend, self.server)
        conn.owner = self.requester
        self.requester = None  # connected: only the connection knows its owner from now on
        return conn

    def clientConnectionFailed(self, connector, reason):
        requester, self.requester = self.requester, None
        if requester is not None:
            requester.server_connect_failed(self.server, reason)


@implementer(IPushProducer)
class ServerConnection(protocol.Protocol):
    """One connection to a server, lent to one request at a time."""

    def __init__(self, backend: BackendRuntime, server):
        self.backend = backend
        self.server = server
        self.owner = None  # the frontend request using it, None when idle
        self.parser = ResponseParser(self, backend.limits)
        self.timer = ConnTimer(backend.reactor, self._timed_out)
        self.requests = 0  # requests sent on this connection
        self.connected = False
        self.idle = False
        self.reads = 0
        self.tunnel = False
        self.resp_open = False  # a final response head was received, body not complete
        self.paused = False
        self.reads_at_arm = 0
        self.eof_body = False
        self.keep_alive = True

    # -- Twisted ---------------------------------------------------------------------
    def connectionMade(self) -> None:
        self.connected = True
        self.write = direct_writer(self.transport)
        nodelay = getattr(self.transport, "setTcpNoDelay", None)
        if nodelay is not None:
            nodelay(True)
        owner = self.owner
        if owner is not None:
            owner.server_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.reads += 1
        owner = self.owner
        if self.tunnel:
            if owner is not None:
                owner.server_tunnel_data(data)
            return
        if owner is None:  # bytes from an idle server: it is broken, do not reuse
            self.close()
            return
        try:
            offset = self.parser.feed(data)
        except HTTPError as exc:
            self.owner = None
            self.close()
            owner.server_failed(self, "bad-response", exc)
            return
        owner = self.owner
        if owner is not None:
            if owner.resp_pending is not None:
                owner.flush_head()
            if self.resp_open and not owner.resp_hooked:
                owner.hook_response(self)
        if offset is not None:  # 101 Switching Protocols: the rest is tunnelled
            self.tunnel = True
            rest = data[offset:]
            if rest and self.owner is not None:
                self.owner.server_tunnel_data(rest)

    def connectionLost(self, reason=None) -> None:
        self.connected = False
        # parser and timer let go of this connection: freed at once, without the collector
        self.timer.close()
        self.parser.close()
        if self.idle:
            self.idle = False
            pool = self.backend.pools.get(self.server.name)
            if pool is not None:
                pool.discard(self)
            return
        owner = self.owner
        if owner is not None:
            self.owner = None
            if self.tunnel:
                owner.server_tunnel_closed(self)
            elif self.resp_open and self.eof_body:  # the close ends a body without length
                owner.server_response_end(None)
            else:
                owner.server_failed(self, "closed", None)

    # -- response framing (ResponseParser sink) ---------------------------------------
    def response_head(self, head) -> None:
        status = head.status
        if status < 200 and status != 101:
            self.owner.server_interim(head)
            return
        self.resp_open = True
        self.eof_body = False  # set by the owner, which reads the framing headers
        self.keep_alive = head.keep_alive
        self.owner.server_response_head(self, head)

    def response_body(self, data: bytes) -> None:
        owner = self.owner
        if owner is not None:
            owner.server_response_body(data)

    def response_end(self, trailers) -> None:
        if not self.resp_open:  # end of an interim (1xx) response
            return
        self.resp_open = False
        owner = self.owner
        if owner is not None:
            owner.server_response_end(trailers)

    # -- use by a request ------------------------------------------------------------
    def usable(self) -> bool:
        return self.connected and self.idle

    def attach(self, owner) -> None:
        """Lend the connection to ``owner`` (taken from the pool or just connected)."""
        self.owner = owner
        self.idle = False
        self.server.cur_conns += 1
        self.backend.cur_conns += 1

    def send_head(self, data: bytes) -> None:
        if self.requests == 0 and self.backend.send_proxy.get(self.server.name):
            data = proxy_v1_header(self.owner.sess) + data  # send-proxy: before the first byte
        self.requests += 1
        self.resp_open = False
        self.eof_body = False
        self.keep_alive = True
        self.reads_at_arm = self.reads
        self.timer.arm(self.backend.server_timeout, "server")
        self.write(data)

    def release(self, reusable: bool) -> None:
        """The request is done with this connection: back to the pool, or closed."""
        self.owner = None
        self.server.cur_conns -= 1
        backend = self.backend
        backend.cur_conns -= 1
        if self.paused:
            self.paused = False
            self.transport.resumeProducing()
        if reusable and self.connected and not self.tunnel and self.keep_alive:
            pool = backend.pools.get(self.server.name)
            if pool is not None and len(pool.idle) < pool.max_idle:  # pool.put, inlined
                pool.idle.append(self)
                self.idle = True
                # the pending server-timeout deadline now bounds the idle time
                if self.timer.kind is not None:
                    self.timer.kind = "idle"
                else:
                    self.timer.arm(POOL_IDLE_SECONDS, "idle")
                if backend.queue:
                    backend.slot_freed()
                return
        self.close()
        if backend.queue:
            backend.slot_freed()

    def keep_private(self) -> None:
        """Stay open and idle outside the pool, for the same client's next request."""
        self.owner = None
        self.server.cur_conns -= 1
        self.backend.cur_conns -= 1
        if self.paused:
            self.paused = False
            self.transport.resumeProducing()
        self.idle = True
        if self.timer.kind is not None:
            self.timer.kind = "idle"
        if self.backend.queue:
            self.backend.slot_freed()

    def close(self) -> None:
        if self.idle:  # an idle connection closed by us (idle timeout) leaves its pool now
            self.idle = False
            pool = self.backend.pools.get(self.server.name)
            if pool is not None:
                pool.discard(self)
        self.timer.stop()
        if self.connected:
            self.transport.loseConnection()

    def abort(self) -> None:
        self.owner = None
        self.idle = False
        self.timer.stop()
        if self.connected:
            self.transport.abortConnection()

    def _timed_out(self, kind: str) -> None:
        if kind == "idle":
            self.close()
            return
        # `timeout server` is inactivity: bytes read since the timer was armed, or a
        # pause because the client does not read, push the deadline on.
        if self.reads != self.reads_at_arm or self.paused:
            self.arm_server_timeout()
            return
        owner = self.owner
        self.owner = None
        self.abort()
        if owner is not None:
            owner.server_failed(self, "tunnel-timeout" if self.tunnel else "timeout", None)

    def arm_server_timeout(self) -> None:
        self.reads_at_arm = self.reads
        self.timer.arm(self.backend.tunnel_timeout if self.tunnel else self.backend.server_timeout, "server")

    # -- IPushProducer: the client transport asks us to stop reading the server -------
    def pauseProducing(self) -> None:
        if not self.paused and self.connected:
            self.paused = True
            self.transport.pauseProducing()
            if self.owner is not None:
                self.owner.client_blocked()

    def resumeProducing(self) -> None:
        if self.paused:
            self.paused = False
            if self.connected:
                self.transport.resumeProducing()
            if self.owner is not None:
                self.owner.client_unblocked()

    def stopProducing(self) -> None:
        self.abort()
