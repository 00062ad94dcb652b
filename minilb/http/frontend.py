"""Owns the client side of HTTP proxying: the protocol of one client connection.

`FrontendRuntime` is a frontend (or listen) section made ready for traffic once, at
start: its rules and their ``has_*`` flags, its backends, timeouts in seconds, the
connection mode and ``x-forwarded-for`` plan per backend, error pages, log sink.  It
is the Twisted factory of `ClientConnection`.

`ClientConnection` frames requests with `minilb.http.parse.RequestParser` and, per
request: builds the `Txn` (only when some rule, a stick rule or a request-hashing
balancer reads it), runs the rules that exist, picks the backend and a server
(``stick match``/``stick on`` persistence first, stores written once it answered),
borrows an idle keep-alive server connection (``http-reuse safe``: never for the first
request of a client connection; ``never``: a connection private to the client) or
dials a new one, streams the request body to the server and the response back, both
ways without buffering whole bodies (while a body flows each side is registered as
the other's push producer, so a full socket buffer stops reading on the other side).
Pipelined requests wait, in order, with their bodies held to a bounded size.  Errors
are HAProxy's pages (`minilb.http.errors`, with `mux_error` for the 400/408 its HTTP/1
layer sends itself), or the proxy's ``errorfile``.  One timer per connection
(`minilb.tcp.timer.ConnTimer`); writes go out at once when nothing is queued
(`minilb.tcp.io.direct_writer`).
"""

from __future__ import annotations

import collections

import attrs
from twisted.internet import protocol
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer, ISSLTransport
from zope.interface import implementer

from minilb.errors import HTTPError
from minilb.http import errors as http_errors
from minilb.http.backend import connection_mode, server_address
from minilb.http.errors import mux_error
from minilb.http.log import format_connect, format_httplog
from minilb.http.parse import (
    Limits,
    RequestParser,
    chunk,
    client_response_head,
    last_chunk,
    request_head_bytes,
    response_head_bytes,
)
from minilb.rules.replies import reason_for, wire_bytes
from minilb.rules.txn import Reply, Session, Txn
from minilb.stick import persistence
from minilb.tcp.gate import AcceptGate
from minilb.tcp.io import direct_writer
from minilb.tcp.timer import ConnTimer

#: request body bytes held while the server connection is being made, or for a
#: pipelined request waiting its turn, before the client is paused.
MAX_HELD_BODY = 65536
#: pipelined requests framed ahead of the one in progress before the client is paused.
MAX_PIPELINED = 32


#: the flags of a ProxyRules saying some rule reads or edits the request
_TXN_FLAGS = (
    "has_http_request",
    "has_http_response",
    "has_http_after_response",
    "has_tcp_connection",
    "has_tcp_session",
    "has_tcp_content",
    "has_tcp_response",
    "has_use_backend",
    "has_use_server",
)


def _reads_txn(rules) -> bool:
    """Whether compiled rules (possibly empty: every proxy gets some) ever read a `Txn`."""
    if rules is None:
        return False
    return any(getattr(rules, flag, False) for flag in _TXN_FLAGS) or bool(getattr(rules, "extra", None))


def _seconds(ms: int | None) -> float | None:
    return None if ms is None else ms / 1000.0


class ForwardForPlan:
    """``option forwardfor`` resolved for one frontend/backend pair."""

    __slots__ = ("header", "lheader", "if_none", "except_net")

    def __init__(self, ff):
        import ipaddress

        self.header = ff.header.lower().encode("latin-1")
        self.lheader = self.header
        self.if_none = ff.if_none
        self.except_net = ipaddress.ip_network(ff.except_net, strict=False) if ff.except_net else None

    def applies_to(self, src: str) -> bool:
        if self.except_net is None:
            return True
        import ipaddress

        try:
            return ipaddress.ip_address(src) not in self.except_net
        except ValueError:
            return True


class ActiveCounter:
    """Connections of the whole worker (%ac in logs)."""

    __slots__ = ("value",)

    def __init__(self):
        self.value = 0


class FrontendRuntime(protocol.Factory):
    """A frontend made ready for traffic: the factory of its client connections."""

    noisy = False

    def __init__(
        self,
        proxy,
        reactor,
        backends: dict,
        rules=None,
        *,
        limits: Limits | None = None,
        sink=None,
        active: ActiveCounter | None = None,
        tracking=None,
        count_bytes: bool = True,
        errlog=None,
    ):
        self.proxy = proxy
        self.name = proxy.name
        self.reactor = reactor
        self.backends = backends
        self.rules = rules
        self.has_http_request = bool(rules is not None and rules.has_http_request)
        self.has_http_response = bool(rules is not None and rules.has_http_response)
        self.has_http_after_response = bool(rules is not None and rules.has_http_after_response)
        self.has_tcp_connection = bool(rules is not None and rules.has_tcp_connection)
        self.has_tcp_session = bool(rules is not None and getattr(rules, "has_tcp_session", False))
        self.has_tcp_content = bool(rules is not None and rules.has_tcp_content)
        self.has_use_backend = bool(rules is not None and rules.has_use_backend)
        # some tcp-request content, http-request or use_backend rule runs per request
        self.request_rules = self.has_tcp_content or self.has_http_request or self.has_use_backend
        # some http-response or http-after-response rule runs on a server's response
        self.response_rules = self.has_http_response or self.has_http_after_response
        # A Txn is built per request only when something reads it: rules (ours or a
        # backend's), a request-hashing balancer, or stick-counter accounting.
        self.need_txn = _reads_txn(rules) or any(
            _reads_txn(be.rules) or be.needs_txn or be.sticky for be in backends.values()
        )
        name = proxy.default_backend or (proxy.name if proxy.is_backend else None)
        self.default_backend = backends.get(name) if name else None
        t = proxy.timeouts
        self.client_timeout = _seconds(t.client)
        self.http_request_timeout = _seconds(t.http_request) or self.client_timeout
        self.keep_alive_timeout = _seconds(t.http_keep_alive) or self.http_request_timeout
        self.tarpit_timeout = _seconds(t.tarpit) or self.client_timeout
        self.errorfiles = {e.status: e.content for e in proxy.errorfiles}
        self.limits = limits or Limits()
        self.modes = {}
        self.xff = {}
        for be in backends.values():
            self.modes[be.name] = connection_mode(proxy, be.proxy)
            ff = be.proxy.forwardfor or proxy.forwardfor
            self.xff[be.name] = ForwardForPlan(ff) if ff is not None else None
        self.sink = sink
        self.httplog = sink is not None and (proxy.httplog or proxy.log_format is not None)
        self.connect_log = sink is not None and not self.httplog and not proxy.tcplog
        self.dontlognull = proxy.dontlognull
        self.active = active or ActiveCounter()
        self.tracking = tracking  # the minilb.stick.tracking module, or None
        # some table stores bytes_in/out counters: account bytes of tracked sessions
        self.count_bytes = count_bytes and tracking is not None
        self.errlog = errlog  # callable(str) for errors with context, or None
        self.connections: set[ClientConnection] = set()
        self.cur_conns = 0
        self.maxconn = proxy.maxconn
        self.gate = AcceptGate(proxy.maxconn)
        self.monitor_uri = proxy.monitor_uri.encode("latin-1") if proxy.monitor_uri else None
        self.stopping = False
        # the last rule reply sent and how: (reply, (close, version, method), bytes,
        # counted size); a rule's Reply is immutable, so the same one framed the same
        # way gives the same bytes (one entry: bounded, and right for a deny path)
        self.last_wire: tuple = (None, None, b"", 0)

    def buildProtocol(self, addr):
        conn = ClientConnection()
        conn.fe = self
        return conn

    def error_page(self, status: int, be=None) -> bytes:
        if be is not None and status in be.errorfiles:
            return be.errorfiles[status]
        page = self.errorfiles.get(status)
        return page if page is not None else http_errors.error_response(status)

    def stop_accepting(self) -> None:
        """Graceful stop: idle connections close now, busy ones after their response."""
        self.stopping = True
        for conn in list(self.connections):
            conn.graceful_close()


#: the `Reply.kind` values that count as an http error in stick counters
_COUNTED_REPLY_KINDS = frozenset(("deny", "tarpit"))

#: what ``monitor-uri`` answers (HAProxy's 200 page), before any rule runs
_MONITOR_REPLY = http_errors.error_reply(200)

#: the per-request fields of a ClientConnection, reset in one step between requests
_REQUEST_DEFAULTS = {
    "head": None,  # RequestHead of the request in progress
    "txn": None,  # its Txn, when rules or the balancer need one
    "be": None,
    "server": None,
    "conn": None,  # ServerConnection lent to this request
    "resp_hooked": False,  # conn registered as producer of our transport
    "req_hooked": None,  # the conn whose transport we are registered on
    "req_done": False,  # the whole request was received
    "req_sent": False,  # its head was written to the server
    "held_body": None,  # body pieces waiting for the server connection
    "held_size": 0,
    "held_trailers": None,
    "resp_started": False,
    "resp_chunked": False,
    "resp_pending": None,  # response head not yet written (joins the first body bytes)
    "replied": False,  # answered by a rule or an error, not by a server
    "reply_source": "server",  # "response" once a server answered (counted then), "deny", "internal"
    "after_done": False,  # http-after-response rules already ran for this response
    "upgrading": False,  # an upgrade request was sent: later bytes are the tunnel's
    "retries_left": 0,
    "tried": frozenset(),
    "stick_stores": None,  # (table, key) pairs to write the chosen server into
    "queued": False,
    "status": 0,
    "bytes_out": 0,
    "term": "--",
    "retry_call": None,
    "t_start": None,
    "t_queue": None,
    "t_connect": None,
    "t_response": None,
}


#: the fields only a request that reached a backend changes (`be` is set before any of
#: them): a request answered before (a deny) resets the others alone
_SERVER_FIELDS = frozenset(
    (
        "be",
        "server",
        "conn",
        "resp_hooked",
        "req_hooked",
        "req_sent",
        "resp_started",
        "resp_chunked",
        "resp_pending",
        "retries_left",
        "tried",
        "stick_stores",
        "queued",
        "t_queue",
        "t_connect",
        "t_response",
    )
)


def _field_resetter(defaults: dict):
    """A method that sets each field of ``defaults`` on ``self`` with plain attribute
    stores (cheaper per request than ``self.__dict__.update(defaults)``)."""
    namespace = {f"_v{i}": value for i, value in enumerate(defaults.values())}
    body = "".join(f"    self.{name} = _v{i}\n" for i, name in enumerate(defaults))
    exec(f"def reset(self):\n{body}", namespace)
    return namespace["reset"]


class _Pipelined:
    """A request framed while an earlier one is still in progress."""

    __slots__ = ("head", "body", "done", "trailers")

    def __init__(self, head):
        self.head = head
        self.body: list[bytes] = []
        self.done = False
        self.trailers = None


@implementer(IPushProducer, IHalfCloseableProtocol)
class ClientConnection(protocol.Protocol):
    """One client connection of an HTTP frontend."""

    fe: FrontendRuntime

    def connectionMade(self) -> None:
        fe = self.fe
        fe.cur_conns += 1
        fe.active.value += 1
        fe.connections.add(self)
        transport = self.transport
        peer = transport.getPeer()
        host = transport.getHost()
        self.sess = sess = Session(
            src=getattr(peer, "host", "unix"),
            src_port=getattr(peer, "port", 0),
            dst=getattr(host, "host", ""),
            dst_port=getattr(host, "port", 0),
            frontend=fe.name,
        )
        if ISSLTransport.providedBy(transport):
            sess.ssl = True
        self.reactor = fe.reactor
        self.write = direct_writer(transport)
        self.parser = RequestParser(self, fe.limits)
        self.timer = ConnTimer(fe.reactor, self._timed_out)
        self.accept_time = fe.reactor.seconds()
        self.requests = 0
        self.reads = 0  # reads from the client (activity for inactivity timeouts)
        self.bytes_in = 0  # client bytes not yet counted into stick counters
        self.reads_at_arm = 0
        self.open = True
        self.closing = False  # close once the current response is written
        self.client_eof = False
        self.read_paused = False
        self.paused_by_server = False
        self.write_paused = False
        self.pending: collections.deque[_Pipelined] = collections.deque()
        self.tunnel = None
        self.private = None  # http-reuse never: this client's own idle server connection
        self._reset_request()
        nodelay = getattr(transport, "setTcpNoDelay", None)
        if nodelay is not None:
            nodelay(True)
        if fe.connect_log:
            fe.sink.emit(format_connect(sess.src, sess.src_port, sess.dst, sess.dst_port, fe.name, "http"))
        if fe.maxconn is not None:
            fe.gate.opened(fe.cur_conns)
        if fe.has_tcp_connection or fe.has_tcp_session:
            sess.now_ms = int(self.accept_time * 1000)
            rules = fe.rules
            if fe.has_tcp_connection and not rules.tcp_connection(sess):
                self._close_now(abort=True)
                return
            if fe.has_tcp_session and not rules.tcp_session(sess):
                self._close_now(abort=True)
                return
            if fe.tracking is not None and _tracked(sess):
                fe.tracking.on_session_accept(sess)
        self.timer.arm(fe.http_request_timeout, "idle")

    #: every per-request field back to its `_REQUEST_DEFAULTS` value
    _reset_request = _field_resetter(_REQUEST_DEFAULTS)
    #: the same after a request that no backend took (``be`` is None): the fields of
    #: `_SERVER_FIELDS` still have their default values
    _reset_unserved = _field_resetter({k: v for k, v in _REQUEST_DEFAULTS.items() if k not in _SERVER_FIELDS})

    # ------------------------------------------------------------------ bytes in
    def dataReceived(self, data: bytes) -> None:
        self.reads += 1
        self.bytes_in += len(data)  # counted into stick counters once per request
        tunnel = self.tunnel
        if tunnel is not None:
            tunnel.reads += 1  # client activity keeps the tunnel alive too
            tunnel.write(data)
            return
        if self.closing and self.head is None:
            return
        if self.upgrading:  # not HTTP any more (unless the server refuses the upgrade)
            self._upgrade_data(data)
            return
        try:
            offset = self.parser.feed(data)
        except HTTPError as exc:
            self._bad_request(exc)
            return
        except Exception as exc:  # a bug must not leave a client hanging
            self._internal_error(exc)
            return
        if offset is not None:
            self._upgrade_data(data[offset:])
        if self.head is None and self.parser._in_head and self.open:
            if self.timer.kind != "head":
                self.timer.arm(self.fe.http_request_timeout, "head")

    # --- RequestParser sink
    def request_head(self, head) -> None:
        if self.head is not None or self.pending:
            p = _Pipelined(head)
            self.pending.append(p)
            if len(self.pending) >= MAX_PIPELINED:
                self._pause_reading()
            return
        self._start(head)

    def request_body(self, data: bytes) -> None:
        if self.pending:
            p = self.pending[-1]
            p.body.append(data)
            self.held_size += len(data)
            if self.held_size > MAX_HELD_BODY:
                self._pause_reading()
            return
        if self.replied:
            return  # the request was answered by a rule or an error: drop its body
        conn = self.conn
        if conn is not None and self.req_sent:
            conn.reads += 1  # an upload in progress is activity: no `timeout server` yet
            if self.head.chunked:
                conn.write(chunk(data))
            else:
                conn.write(data)
            return
        self._hold(data)

    def _hold(self, data: bytes) -> None:
        """Keep request bytes until a server connection takes them (bounded: past
        MAX_HELD_BODY the client is paused)."""
        if self.held_body is None:
            self.held_body = []
        self.held_body.append(data)
        self.held_size += len(data)
        if self.held_size > MAX_HELD_BODY:
            self._pause_reading()

    def request_end(self, trailers) -> None:
        if self.pending:
            p = self.pending[-1]
            p.done = True
            p.trailers = trailers
            return
        if self.head is None:
            return
        self.req_done = True
        if self.replied:
            if self.retry_call is None:  # not while a tarpit delays the reply
                self._finish()
            return
        if self.req_sent:
            if self.head.chunked:
                self.conn.write(last_chunk(trailers))
            self.timer.kind = None  # timer.disarm(), inlined
        elif self.head.chunked:
            if self.held_body is None:
                self.held_body = []
            self.held_body.append(None)  # marks the end, with trailers kept below
            self.held_trailers = trailers

    # ------------------------------------------------------------------ a request starts
    def _start(self, head, held: _Pipelined | None = None) -> None:
        fe = self.fe
        self.requests += 1
        self.head = head
        sess = self.sess
        if fe.count_bytes:  # as haproxy counts: 4 bytes less per header line
            self.bytes_in -= 4 * len(head.headers)
        if fe.need_txn:  # (path and query are split from the uri if a rule reads them)
            self.txn = txn = Txn(sess, head.method, head.uri, None, None, head.version, head.headers)
        else:
            txn = None
        if fe.sink is not None:
            self.t_start = self.reactor.seconds()
        if head.has_body:
            self._arm_body_timer()
        else:
            self.timer.kind = None  # timer.disarm(), inlined
        if held is not None:
            self.held_body = held.body or None
            self.held_size = sum(len(b) for b in held.body)
            if held.done:
                self.req_done = True
                if head.chunked:
                    self.held_body = (self.held_body or []) + [None]
                    self.held_trailers = held.trailers
        if fe.monitor_uri is not None and head.uri == fe.monitor_uri:
            self.term = "--"
            self._send_reply(_MONITOR_REPLY)
            return
        if fe.request_rules:
            sess.now_ms = int(self.reactor.seconds() * 1000)
            if fe.has_tcp_content and not fe.rules.tcp_content(sess, txn):
                self._close_now(abort=True)
                return
            # the request counts on every entry tracked so far (tcp-request content
            # rules included), as haproxy counts it once the request is parsed
            stkctr = sess.stkctr
            if fe.tracking is not None and (
                stkctr[0] is not None or stkctr[1] is not None or stkctr[2] is not None
            ):
                fe.tracking.on_http_request(txn)
            if fe.has_http_request:
                reply = fe.rules.http_request(txn)
                if reply is not None:
                    if reply.delay_ms:
                        self._send_reply(reply)
                    else:  # what _send_reply does without a delay
                        self._send_reply_now(reply)
                    return
            be = fe.default_backend
            if fe.has_use_backend:
                name = fe.rules.select_backend(txn)
                if name is not None:
                    be = fe.backends.get(name, be)
        else:
            if txn is not None and fe.tracking is not None and _tracked(sess):  # by tcp-request connection
                fe.tracking.on_http_request(txn)
            be = fe.default_backend
        if be is None:
            self.term = "PR"
            self._send_error(503)
            return
        self.be = be
        be.total_requests += 1
        if txn is not None:
            txn.backend = be.name
        be_rules = be._rules
        if be_rules is not None and be_rules is not fe.rules and be_rules.has_http_request:
            reply = be_rules.http_request(txn)
            if reply is not None:
                self._send_reply(reply)
                return
        self.retries_left = be.retries
        self._pick_and_connect()

    def _pick_and_connect(self) -> None:
        be = self.be
        server = None
        tried = self.tried
        if not tried:
            be_rules = be._rules
            if be_rules is not None and be_rules.has_use_server:
                name = be_rules.select_server(self.txn)
                if name is not None:
                    forced = be.server_named(name)
                    if forced is not None and forced.up and not forced.full:
                        server = forced
            if be.sticky:  # stick on / match / store-request
                if server is None:
                    server = be.persistent_server(self.sess, self.txn)
                self.stick_stores = persistence.pending_stores(be_rules, self.sess, self.txn)
        if server is None:
            server = be.pick(self.txn, self.sess.src, tried)
        if server is None:
            if not self.tried and be.all_full() and be.queue_timeout:
                if be.enqueue(self):
                    self.queued = True
                    self.term = "sQ"
                    self.timer.arm(be.queue_timeout, "queue")
                    return
            if self.tried and self.server is not None:
                server = self.server  # nothing else to redispatch to: retry the same one
            else:
                self.term = "SC"
                self._send_error(503, be)
                return
        self.server = server
        txn = self.txn
        if txn is not None:
            txn.server = server.name
        reuse = be.reuse
        private = self.private
        if private is not None:
            self.private = None
            if private.server is server and private.connected and private.idle:
                private.attach(self)
                self.conn = private
                self._send_request()
                return
            private.close()
        if (
            (self.requests > 1 or reuse in ("aggressive", "always"))
            and reuse != "never"
            and self.fe.modes[be.name] == "keep-alive"
            and not (be.send_proxy and be.send_proxy.get(server.name))
        ):
            conn = be.take_idle(server)
            if conn is not None:
                conn.attach(self)
                self.conn = conn
                self._send_request()
                return
        self.t_queue = self.reactor.seconds() if self.t_start is not None else None
        be.connect(server, self)

    def queue_ready(self) -> None:
        """The backend freed a server slot (called by BackendRuntime.slot_freed)."""
        if not self.queued or not self.open:
            return
        self.queued = False
        self.term = "--"
        self.timer.disarm()
        self._pick_and_connect()

    # --- server connection outcome
    def server_connected(self, conn) -> None:
        if not self.open or self.head is None or self.conn is not None:
            conn.owner = None
            conn.close()
            return
        if self.t_start is not None:
            self.t_connect = self.reactor.seconds()
        conn.attach(self)
        self.conn = conn
        self._send_request()

    def server_connect_failed(self, server, reason) -> None:
        if not self.open or self.head is None:
            return
        be = self.be
        if self.retries_left > 0:
            self.retries_left -= 1
            if be.redispatch and self.retries_left == 0:
                self.tried = self.tried | {server.name}
            delay = min(be.connect_timeout, 1.0)
            self.retry_call = self.reactor.callLater(delay, self._retry)
            return
        self.term = "SC"
        self._log_error(
            f"{self.fe.name}/{be.name}/{server.name}: connection failed: {reason.getErrorMessage()}"
        )
        self._send_error(503, be)

    def _retry(self) -> None:
        self.retry_call = None
        if self.open and self.head is not None and self.conn is None:
            self._pick_and_connect()

    def _send_request(self) -> None:
        conn = self.conn
        head = self.head
        be_name = self.be.name
        fe = self.fe
        add = None
        txn = self.txn
        if txn is not None:  # what the rules left: set-method, set-path, set-uri, headers
            method, uri, headers = txn.method, txn.uri, txn.headers
        else:
            method, uri, headers = head.method, head.uri, head.headers
        plan = fe.xff[be_name]
        if plan is not None and plan.applies_to(self.sess.src):
            if not plan.if_none or not any(n.lower() == plan.lheader for n, _ in headers):
                add = [(plan.header, self.sess.src.encode("latin-1"))]
        version = head.version
        if fe.modes[be_name] != "keep-alive":
            connection = b"close" if version == "1.1" else None
        elif version == "1.0":
            connection = b"keep-alive"
        else:
            connection = None
        conn.send_head(request_head_bytes(method, uri, version, headers, add, connection))
        self.req_sent = True
        if head.has_body or head.upgrade:  # only a body (or a tunnel) needs backpressure
            conn.transport.registerProducer(self, True)
            self.req_hooked = conn
        held = self.held_body
        if held is not None and not head.upgrade:  # tunnelled bytes wait for the 101
            self.held_body = None
            self.held_size = 0
            write = conn.write
            for piece in held:
                if piece is None:
                    write(last_chunk(self.held_trailers))
                elif head.chunked:
                    write(chunk(piece))
                else:
                    write(piece)
            if not self.pending:
                self._resume_reading()
        if self.req_done:
            self.timer.kind = None  # timer.disarm(), inlined

    # --- response from the server (ServerConnection calls these)
    def server_interim(self, head) -> None:
        if head.status == 100 or head.status >= 102:
            self.write(response_head_bytes(head.status, head.reason, head.headers))

    def server_response_head(self, conn, head) -> None:
        fe = self.fe
        txn = self.txn
        stores = self.stick_stores
        if stores:  # as haproxy's store rules: once the chosen server has answered
            self.stick_stores = None
            server = self.server
            persistence.commit(stores, server.id, server.name, server_address(server))
        status = head.status
        self.status = status
        # haproxy 2.6 counts the server's own status as soon as it sees it (a 4xx as an
        # http_err, a 5xx but 501/505 as an http_fail), before any http-response rule
        if status >= 400 and txn is not None and fe.tracking is not None and _tracked(self.sess):
            fe.tracking.on_http_response(txn, status, "server")
        self.reply_source = "response"  # an http-response deny or return counts nothing more
        if self.t_start is not None:
            self.t_response = self.reactor.seconds()
        headers = head.headers
        reason = head.reason
        if txn is not None:
            txn.status = status
            if fe.response_rules or self.be.response_rules:
                ruled = self._response_rules(txn, headers, status, reason)
                if ruled is None:
                    return  # answered by a rule
                headers, status, reason = ruled
            self.after_done = True
        req = self.head
        if req.upgrade:
            if status == 101 or (req.method == "CONNECT" and 200 <= status < 300):
                data, _, _, _ = client_response_head(
                    status,
                    reason,
                    headers,
                    version=head.version,
                    no_body=True,
                    client_11=True,
                    closing=False,
                    keep_alive_token=False,
                )
                self.resp_started = True
                self.bytes_out += _htx_size(data) if self.fe.count_bytes else len(data)
                self.write(data)
                self._become_tunnel(conn)
                return
            self.closing = True  # the upgrade was refused: the client stream is no longer HTTP
        no_body = status in (204, 304) or req.method == "HEAD"
        client_11 = req.version == "1.1"
        data, self.resp_chunked, closing, conn.eof_body = client_response_head(
            status,
            reason,
            headers,
            version=head.version,
            no_body=no_body,
            client_11=client_11,
            closing=self.closing or not req.keep_alive or fe.modes[self.be.name] == "close" or fe.stopping,
            keep_alive_token=not client_11,
        )
        self.closing = closing
        self.resp_started = True
        self.bytes_out += _htx_size(data) if self.fe.count_bytes else len(data)
        if no_body:
            self.write(data)
            if req.method == "HEAD":
                conn.keep_alive = False  # the parser cannot be told the body is empty
                conn.resp_open = False
            self.server_response_end(None)
            return
        self.resp_pending = data  # written with the first piece of body
        # backpressure is set up by hook_response if the body outlasts this read

    def _response_rules(self, txn, headers, status: int, reason: bytes):
        """Run the http-response and http-after-response rules of the backend and the
        frontend on a server's response head: None when a rule answered instead,
        else the ``(headers, status, reason)`` to write."""
        fe = self.fe
        be_rules = self.be._rules
        if be_rules is not None and be_rules is not fe.rules and be_rules.has_http_response:
            txn.resp_headers = headers
            reply = be_rules.http_response(txn)
            if reply is not None:
                self._drop_server(abort=True)
                self._send_reply(reply)
                return None
        if fe.has_http_response:
            txn.resp_headers = headers
            reply = fe.rules.http_response(txn)
            if reply is not None:
                self._drop_server(abort=True)
                self._send_reply(reply)
                return None
        # http-after-response rules see and edit the response before it is written
        if be_rules is not None and be_rules is not fe.rules and be_rules.has_http_after_response:
            txn.resp_headers = txn.resp_headers or headers
            be_rules.http_after_response(txn)
        if fe.has_http_after_response:
            txn.resp_headers = txn.resp_headers or headers
            fe.rules.http_after_response(txn)
        if txn.resp_headers:
            headers = txn.resp_headers
        if txn.status != status:  # http-response / http-after-response set-status
            status = self.status = txn.status
            reason = (txn.resp_reason or reason_for(status)).encode("latin-1")
        return headers, status, reason

    def hook_response(self, conn) -> None:
        """The response body continues past one read: let a full client socket stop
        the reading of the server."""
        self.transport.registerProducer(conn, True)
        self.resp_hooked = True

    def flush_head(self) -> None:
        """Write a response head that no body bytes followed in the same read."""
        pending = self.resp_pending
        if pending is not None:
            self.resp_pending = None
            self.write(pending)

    def server_response_body(self, data: bytes) -> None:
        if self.resp_chunked:
            data = chunk(data)
        self.bytes_out += len(data)
        pending = self.resp_pending
        if pending is not None:
            self.resp_pending = None
            if len(data) <= 16384:  # one send for head and body; bigger bodies are not copied
                self.write(pending + data)
            else:
                self.write(pending)
                self.write(data)
        else:
            self.write(data)

    def server_response_end(self, trailers) -> None:
        conn = self.conn
        if conn is None or self.head is None:
            return
        pending = self.resp_pending
        if pending is not None:
            self.resp_pending = None
            self.write(pending)
        if self.resp_chunked:
            tail = last_chunk(trailers)
            self.bytes_out += len(tail)
            self.write(tail)
        if self.resp_hooked:
            self.resp_hooked = False
            self.transport.unregisterProducer()
        if self.req_hooked is not None:
            self._unhook()
        self.conn = None
        be = self.be
        reusable = self.req_done and self.fe.modes[be.name] == "keep-alive"
        if (
            reusable
            and (be.reuse == "never" or (be.send_proxy and be.send_proxy.get(conn.server.name)))
            and conn.keep_alive
            and self.open
        ):
            conn.keep_private()  # http-reuse never: it serves this client only
            self.private = conn
        else:
            conn.release(reusable)
        if not self.req_done:
            self.closing = True
        self._finish()

    def server_failed(self, conn, why: str, exc) -> None:
        if self.tunnel is conn:
            self.term = "sD" if why == "tunnel-timeout" else "SD"
            self._close_now()
            return
        if self.conn is not conn:
            return
        self._drop_server(abort=True)
        if self.resp_started:
            # Too late for an error page: the client sees the response cut short.
            self.term = "SD" if why != "timeout" else "sD"
            self._finish_log()
            self._close_now(abort=True)
            return
        if (
            why == "closed"
            and conn.requests > 1
            and not self.head.has_body
            and self.retries_left > 0
            and self.open
        ):
            # A reused idle connection closed under us before answering: dial afresh.
            self.retries_left -= 1
            self.req_sent = False
            self.be.connect(self.server, self)
            return
        if why == "closed" and self.requests > 1:
            # haproxy 2.6 does not answer a later request of a keep-alive client whose
            # server closed without a word: it closes, so that the client retries; it
            # neither logs nor counts an http_fail
            self._close_now()
            return
        if why == "timeout":
            self.term = "sH"
            status = 504
        else:
            self.term = "SH"
            status = 502
            if exc is not None:
                self._log_error(f"{self.fe.name}/{self.be.name}/{self.server.name}: invalid response: {exc}")
        fe = self.fe
        if self.txn is not None and fe.tracking is not None and _tracked(self.sess):
            fe.tracking.on_http_response(self.txn, status, "server")  # an http_fail, as haproxy's
        self._send_error(status, self.be)  # the client connection stays open, as haproxy's

    def _drop_server(self, abort: bool) -> None:
        conn = self.conn
        if conn is None:
            return
        self.conn = None
        self._unhook()
        if conn.owner is self or conn.owner is None:
            conn.owner = None
            conn.server.cur_conns -= 1
            conn.backend.cur_conns -= 1
            if abort:
                conn.abort()
            else:
                conn.close()
            if conn.backend.queue:
                conn.backend.slot_freed()

    def _unhook(self) -> None:
        """Undo the producer registrations of the request in progress."""
        if self.resp_hooked:
            self.resp_hooked = False
            self.transport.unregisterProducer()
        conn = self.req_hooked
        if conn is not None:
            self.req_hooked = None
            if conn.transport is not None:
                conn.transport.unregisterProducer()
            if self.paused_by_server:
                self.paused_by_server = False
                self._resume_reading()

    # ------------------------------------------------------------------ replies and errors
    def _send_reply(self, reply) -> None:
        if reply.delay_ms:
            self.replied = True
            self.term = "PT"
            self.timer.disarm()
            txn = self.txn
            if reply.kind in _COUNTED_REPLY_KINDS and txn is not None:
                # haproxy counts a tarpit's http_err (a touch of the entries) when it
                # decides it, not when the delayed answer goes
                if self.fe.tracking is not None and _tracked(self.sess):
                    self.fe.tracking.on_http_denied(txn)
                reply = attrs.evolve(reply, kind="tarpitted")  # counted: not again
            self.retry_call = self.reactor.callLater(reply.delay_ms / 1000.0, self._send_reply_now, reply)
            return
        self._send_reply_now(reply)

    def _send_reply_now(self, reply) -> None:
        self.retry_call = None
        if not self.open:
            return
        self.replied = True
        # HAProxy counts a deny or a tarpit as an http_err of the tracked entries,
        # never a return or a redirect (even with a 4xx status)
        if self.reply_source != "response":  # http-response deny counts no http_err
            self.reply_source = "deny" if reply.kind in _COUNTED_REPLY_KINDS else "internal"
        if self.term == "--":
            self.term = "PR" if reply.status >= 400 else "--"
        self.status = reply.status
        if self.txn is not None:
            self.txn.status = reply.status
        head = self.head
        close = (
            reply.close or not head.keep_alive or (not self.req_done and head.has_body) or self.fe.stopping
        )
        if reply.raw == b"" and reply.close:  # silent-drop / reject: no answer at all
            self.term = "PR"
            self.closing = True
            self._finish_log()
            self._close_now(abort=True)
            return
        txn = self.txn
        fe = self.fe
        if txn is not None and fe.has_http_after_response and reply.raw is None:
            reply = self._after_response_reply(txn, reply)
        framing = (close, head.version, head.method)
        last = fe.last_wire
        if last[0] is reply and last[1] == framing:
            data = last[2]
            size = last[3]
        else:
            data = _reply_bytes(reply, close, head)
            size = _htx_size(data) if fe.count_bytes else len(data)
            fe.last_wire = (reply, framing, data, size)
        if close:
            self.closing = True
        self.bytes_out += size
        self.write(data)
        if self.req_done or close:
            self._finish()

    def _after_response_reply(self, txn, reply):
        """Run http-after-response rules on a rule's reply (not on raw pages) and
        return the reply as they left it."""
        txn.status = reply.status
        txn.resp_reason = None
        txn.resp_headers = [[k, v] for k, v in reply.headers]
        self.fe.rules.http_after_response(txn)
        self.after_done = True
        status = txn.status
        reason = txn.resp_reason or (reply.reason if status == reply.status else None) or reason_for(status)
        return Reply(
            status=status,
            headers=tuple((k, v) for k, v in txn.resp_headers),
            body=reply.body,
            reason=reason,
            close=reply.close,
            kind=reply.kind,
        )

    def _send_error(self, status: int, be=None) -> None:
        """Answer ``status`` for the request in progress (no server response was sent)."""
        self.status = status
        if self.txn is not None:
            self.txn.status = status
        self.replied = True
        head = self.head
        if (not self.req_done and head.has_body) or not head.keep_alive or self.fe.stopping:
            self.closing = True
        # the proxy's own answer is framed like a rule's reply (connection header)
        data = _reply_bytes(Reply(status, raw=self.fe.error_page(status, be)), self.closing, head)
        self.bytes_out += _htx_size(data) if self.fe.count_bytes else len(data)
        self.write(data)
        if self.req_done or self.closing:
            self._finish()

    def _bad_request(self, exc: HTTPError) -> None:
        fe = self.fe
        if self.head is not None and (self.req_sent or self.resp_started):
            # A broken body of a request already forwarded: too late for a 400.
            self.term = "CD"
            if fe.httplog:
                self._emit_log()
            self._drop_server(abort=True)
            self._close_now(abort=True)
            return
        self.term = "PR"
        self.status = 400
        page = fe.errorfiles.get(400) or mux_error(400)
        self.write(page)
        if fe.sink is not None and fe.httplog:
            self._emit_log(badreq=True)
        self._close_now()

    def _internal_error(self, exc: Exception) -> None:
        import traceback

        self._log_error(f"{self.fe.name}: internal error: {''.join(traceback.format_exception(exc)).strip()}")
        if not self.resp_started:
            self.write(self.fe.error_page(500))
        self._close_now()

    def _log_error(self, message: str) -> None:
        errlog = self.fe.errlog
        if errlog is not None:
            errlog(message)

    # ------------------------------------------------------------------ end of a request
    def _finish(self) -> None:
        """The response of the current request is complete."""
        fe = self.fe
        txn = self.txn
        if txn is not None:
            if fe.has_http_after_response and not self.after_done:
                fe.rules.http_after_response(txn)
            stkctr = self.sess.stkctr
            if fe.tracking is not None and (
                stkctr[0] is not None or stkctr[1] is not None or stkctr[2] is not None
            ):  # _tracked(self.sess), inlined
                # a server's status (or its failure) was counted when it came: only a
                # deny or a tarpit of the rules is left to count (no 503 of the proxy's own)
                if not fe.count_bytes:
                    fe.tracking.on_txn_done(txn, self.status, self.reply_source)
                else:
                    if self.reply_source == "deny":
                        fe.tracking.on_http_response(txn, self.status, "deny")
                    fe.tracking.on_bytes(self.sess, self.bytes_in, self.bytes_out)
                    self.bytes_in = 0
                    fe.tracking.on_txn_end(txn)
        if fe.httplog and self.head is not None:
            self._emit_log()
        if self.conn is not None:
            self._drop_server(abort=True)
        if self.closing or self.client_eof or not self.open:
            self.head = None  # finished: later events of this request are ignored
            self.replied = True
            self._close_now()
            return
        if self.be is None:
            self._reset_unserved()
        else:
            self._reset_request()
        if self.pending:
            p = self.pending.popleft()
            self._start(p.head, p)
            if len(self.pending) < MAX_PIPELINED:
                self._resume_reading()
            return
        if self.read_paused:
            self._resume_reading()
        self.timer.arm(fe.keep_alive_timeout, "keepalive")

    def _finish_log(self) -> None:
        if self.fe.httplog and self.head is not None:
            self._emit_log()

    def _emit_log(self, badreq: bool = False) -> None:
        fe = self.fe
        now = self.reactor.seconds()
        head = self.head
        start = self.t_start if self.t_start is not None else self.accept_time
        if badreq or head is None:
            request_line = "<BADREQ>"
            t_request = -1
        else:
            request_line = f"{head.method} {head.uri.decode('latin-1')} HTTP/{head.version}"
            t_request = 0
        be = self.be
        server = self.server
        t_connect = -1
        if self.t_connect is not None and self.t_queue is not None:
            t_connect = round((self.t_connect - self.t_queue) * 1000)
        elif self.t_response is not None:
            t_connect = 0
        t_response = -1
        if self.t_response is not None:
            t_response = round(
                (self.t_response - (self.t_connect if self.t_connect is not None else start)) * 1000
            )
        term = self.term if self.term != "--" else "--"
        fe.sink.emit(
            format_httplog(
                src=self.sess.src,
                src_port=self.sess.src_port,
                accept_time=start,
                frontend=fe.name,
                backend=be.name if be is not None else fe.name,
                server=server.name if server is not None else "<NOSRV>",
                t_request=t_request,
                t_queue=0 if server is not None else -1,
                t_connect=t_connect if server is not None else -1,
                t_response=t_response,
                t_active=round((now - start) * 1000),
                status=self.status,
                bytes_out=self.bytes_out,
                termination=term + "--",
                actconn=fe.active.value,
                feconn=fe.cur_conns,
                beconn=be.cur_conns if be is not None else 0,
                srvconn=server.cur_conns if server is not None else 0,
                retries=(be.retries - self.retries_left) if be is not None and server is not None else 0,
                request_line=request_line,
                ssl=self.sess.ssl,
            )
        )

    # ------------------------------------------------------------------ tunnels (101, CONNECT)
    def _upgrade_data(self, data: bytes) -> None:
        """Bytes after an upgrade request wait for the server's answer (bounded)."""
        self.upgrading = True
        if data:
            self._hold(data)

    def _become_tunnel(self, conn) -> None:
        self.tunnel = conn
        conn.tunnel = True
        self.conn = None
        conn.arm_server_timeout()
        self.timer.disarm()
        self.transport.registerProducer(conn, True)
        held = self.held_body
        self.held_body = None
        self.held_size = 0
        if held:
            for piece in held:
                if piece is not None:
                    conn.write(piece)
        if self.read_paused:
            self._resume_reading()

    def server_tunnel_data(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.write(data)

    def server_tunnel_closed(self, conn) -> None:
        self.term = "--"
        self._finish_log()
        self._close_now()

    def _count_missing_request(self, error: bool) -> None:
        """haproxy 2.6 counts the first request of a connection that never came (a 408,
        or the client closing before sending a byte: then also an error) on the entries
        the connection tracks."""
        fe = self.fe
        if fe.tracking is None or not _tracked(self.sess):
            return
        txn = Txn(self.sess, "", b"", "", None, "1.1", [])
        fe.tracking.on_http_request(txn)
        if error:
            fe.tracking.on_http_response(txn, 0, "deny")

    # ------------------------------------------------------------------ timers
    def _timed_out(self, kind: str) -> None:
        if not self.open:
            return
        if kind in ("idle", "head"):
            fe = self.fe
            if kind == "idle" and self.requests:
                self._close_now()
                return
            self.term = "cR"
            self.status = 408
            page = fe.errorfiles.get(408) or mux_error(408)
            self.write(page)
            self._count_missing_request(error=False)
            if fe.httplog and not (fe.dontlognull and self.reads == 0):
                self._emit_log(badreq=True)
            self._close_now()
        elif kind == "keepalive":
            self._close_now()
        elif kind == "queue":
            self.be.dequeue(self)
            self.queued = False
            self.term = "sQ"
            self._send_error(503, self.be)
        else:  # "body" (client stopped sending its body) or "client" (client stopped reading)
            if kind == "body" and self.reads != self.reads_at_arm:
                self._arm_body_timer()  # the body is still coming: inactivity only
                return
            self.term = "cD"
            if self.conn is not None:
                self._drop_server(abort=True)
            if self.fe.httplog and self.head is not None:
                self._emit_log()
            self._close_now(abort=True)

    def _arm_body_timer(self) -> None:
        self.reads_at_arm = self.reads
        self.timer.arm(self.fe.client_timeout, "body")

    # ------------------------------------------------------------------ flow control
    def _pause_reading(self) -> None:
        if not self.read_paused:
            self.read_paused = True
            self.transport.pauseProducing()

    def _resume_reading(self) -> None:
        if self.read_paused and not self.paused_by_server:
            self.read_paused = False
            self.transport.resumeProducing()

    # the server connection tells us when the client stops (or restarts) reading
    def client_blocked(self) -> None:
        self.timer.arm(self.fe.client_timeout, "client")

    def client_unblocked(self) -> None:
        if self.timer.kind == "client":
            self.timer.disarm()

    # IPushProducer, registered on the server connection's transport
    def pauseProducing(self) -> None:
        self.paused_by_server = True
        if not self.read_paused:
            self.read_paused = True
            self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.paused_by_server = False
        if self.read_paused and len(self.pending) < MAX_PIPELINED and self.held_size <= MAX_HELD_BODY:
            self.read_paused = False
            self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self._close_now(abort=True)

    # ------------------------------------------------------------------ closing
    def readConnectionLost(self) -> None:
        """The client half-closed: answer what is in progress, then close."""
        self.client_eof = True
        if self.head is None and not self.pending:
            if self.reads == 0 and self.requests == 0 and self.open:
                self._count_missing_request(error=True)  # closed before any byte
            self._close_now()
        elif self.tunnel is not None:
            lose_write = getattr(self.tunnel.transport, "loseWriteConnection", None)
            if lose_write is not None:
                lose_write()

    def writeConnectionLost(self) -> None:
        self._close_now()

    def graceful_close(self) -> None:
        if self.head is None and not self.pending and self.tunnel is None:
            self._close_now()
        else:
            self.closing = True

    def _close_now(self, abort: bool = False) -> None:
        if not self.open:
            return
        self.open = False
        self.timer.stop()
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        fe = self.fe
        was_open = self.open
        self.open = False
        # nothing reads or waits any more: parser and timer let go of this connection,
        # so that its objects are freed at once (reference counting, not the collector)
        self.timer.close()
        self.parser.close()
        if self.retry_call is not None and self.retry_call.active():
            self.retry_call.cancel()
        self.retry_call = None
        if was_open and self.head is not None and fe.httplog and self.tunnel is None:
            # the client left in the middle of a request: log where it was
            if self.queued:
                self.term = "CQ"
            elif self.resp_started:
                self.term = "CD"
            elif self.conn is None and self.be is not None and not self.replied:
                self.term = "CC"
            else:
                self.term = "CH"
            self._emit_log()
        if self.queued:
            self.be.dequeue(self)
            self.queued = False
        if self.conn is not None:
            self._drop_server(abort=True)
        if self.private is not None:
            self.private.close()
            self.private = None
        if self.tunnel is not None:
            tunnel, self.tunnel = self.tunnel, None
            if tunnel.owner is self:
                tunnel.owner = None
            tunnel.server.cur_conns -= 1
            tunnel.backend.cur_conns -= 1
            tunnel.abort()
        if self in fe.connections:
            fe.connections.discard(self)
            fe.cur_conns -= 1
            fe.active.value -= 1
            if fe.maxconn is not None:
                fe.gate.closed(fe.cur_conns)
        if was_open and self.reads == 0 and self.requests == 0:
            self._count_missing_request(error=True)  # closed by the client before any byte
        if fe.tracking is not None and _tracked(self.sess):
            if self.bytes_in and fe.count_bytes:
                fe.tracking.on_bytes(self.sess, self.bytes_in, 0)
            fe.tracking.on_session_end(self.sess)


def _reply_bytes(reply, close: bool, head) -> bytes:
    """A rule's (or the proxy's) reply as sent to this client: `wire_bytes` adds the
    connection header HAProxy adds and drops the body for HEAD."""
    return wire_bytes(reply, close, head.version, head.method == "HEAD")


def _htx_size(data: bytes) -> int:
    """The size haproxy 2.6 counts into bytes_* for a message head (and what follows
    it in ``data``): 4 bytes less per header line than on the wire (its internal
    form keeps neither ``": "`` nor CRLF of a header)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return len(data)
    return len(data) - 4 * data.count(b"\r\n", 0, end)


def _tracked(sess) -> bool:
    """True when some stick counter is tracked on the session (the hooks cost nothing otherwise)."""
    s = sess.stkctr
    return s[0] is not None or s[1] is not None or s[2] is not None
