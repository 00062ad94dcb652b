"""Owns ``mode tcp`` proxying: a client connection joined to one server connection.

`TcpFrontend` is the factory of a tcp frontend (or listen) section; each
`TcpClient` runs the ``tcp-request connection`` rules, picks a server of its backend
(`minilb.http.backend.BackendRuntime`: the same servers, balancer, retries and
``redispatch`` as HTTP), dials it with ``timeout connect`` and then copies bytes both
ways.  Each side is the other's push producer, so a slow reader stops the reading of
the fast writer (bounded buffers).  Timeouts: ``client`` and ``server`` for
inactivity until both sides spoke, ``tunnel`` (when set) once data flows; half-closes
are passed on.  ``option tcplog`` lines go to the proxy's log sink.
"""

from __future__ import annotations

from twisted.internet import protocol
from twisted.internet.interfaces import IHalfCloseableProtocol, IPushProducer
from zope.interface import implementer

from minilb.http.log import format_connect, format_tcplog
from minilb.rules.txn import Session
from minilb.tcp.gate import AcceptGate
from minilb.tcp.io import direct_writer
from minilb.tcp.proxyproto import proxy_v1_header
from minilb.tcp.timer import ConnTimer

#: bytes from the client held while the server connection is being made.
MAX_EARLY_DATA = 65536


def _seconds(ms):
    return None if ms is None else ms / 1000.0


class TcpFrontend(protocol.Factory):
    noisy = False

    def __init__(
        self,
        proxy,
        reactor,
        backends: dict,
        rules=None,
        *,
        sink=None,
        active=None,
        tracking=None,
        count_bytes: bool = True,
        errlog=None,
    ):
        from minilb.http.frontend import ActiveCounter

        self.proxy = proxy
        self.name = proxy.name
        self.reactor = reactor
        self.backends = backends
        self.rules = rules
        self.has_tcp_connection = bool(rules is not None and rules.has_tcp_connection)
        self.has_tcp_content = bool(rules is not None and rules.has_tcp_content)
        name = proxy.default_backend or (proxy.name if proxy.is_backend else None)
        self.default_backend = backends.get(name) if name else None
        self.client_timeout = _seconds(proxy.timeouts.client)
        self.sink = sink
        self.tcplog = sink is not None and (proxy.tcplog or proxy.httplog)
        self.connect_log = sink is not None and not self.tcplog
        self.active = active or ActiveCounter()
        self.tracking = tracking
        self.count_bytes = count_bytes  # some table stores bytes_* counters
        self.errlog = errlog
        self.connections: set[TcpClient] = set()
        self.cur_conns = 0
        self.maxconn = proxy.maxconn
        self.gate = AcceptGate(proxy.maxconn)
        self.stopping = False

    def buildProtocol(self, addr):
        p = TcpClient()
        p.fe = self
        return p

    def stop_accepting(self) -> None:
        self.stopping = True  # established tunnels run until they end (or hard-stop)


@implementer(IPushProducer, IHalfCloseableProtocol)
class TcpClient(protocol.Protocol):
    fe: TcpFrontend

    def connectionMade(self) -> None:
        fe = self.fe
        fe.cur_conns += 1
        fe.active.value += 1
        fe.connections.add(self)
        peer = self.transport.getPeer()
        host = self.transport.getHost()
        self.sess = sess = Session(
            src=getattr(peer, "host", "unix"),
            src_port=getattr(peer, "port", 0),
            dst=getattr(host, "host", ""),
            dst_port=getattr(host, "port", 0),
            frontend=fe.name,
        )
        self.reactor = fe.reactor
        self.write = direct_writer(self.transport)
        self.accept_time = fe.reactor.seconds()
        self.timer = ConnTimer(fe.reactor, self._timed_out)
        self.server_side = None
        self.server = None
        self.be = fe.default_backend
        self.early: list[bytes] = []
        self.early_size = 0
        self.open = True
        self.retries_left = self.be.retries if self.be is not None else 0
        self.tried: frozenset = frozenset()
        self.bytes_in = 0
        self.bytes_out = 0
        self.t_connect = None
        self.term = "--"
        self.retry_call = None
        self.eof = False
        self.reads = 0
        self.reads_at_arm = 0
        if fe.connect_log:
            fe.sink.emit(format_connect(sess.src, sess.src_port, sess.dst, sess.dst_port, fe.name, "tcp"))
        if fe.maxconn is not None:
            fe.gate.opened(fe.cur_conns)
        if fe.has_tcp_connection:
            sess.now_ms = int(self.accept_time * 1000)
            if not fe.rules.tcp_connection(sess):
                self.term = "PR"
                self._close(abort=True)
                return
            if fe.tracking is not None and any(s is not None for s in sess.stkctr):
                fe.tracking.on_session_accept(sess)
        if fe.has_tcp_content:
            sess.now_ms = int(self.accept_time * 1000)
            if not fe.rules.tcp_content(sess):
                self.term = "PR"
                self._close(abort=True)
                return
        if self.be is None:
            self.term = "SC"
            self._close()
            return
        self._connect()

    def _connect(self) -> None:
        be = self.be
        server = be.pick(None, self.sess.src, self.tried)
        if server is None:
            if self.tried and self.server is not None:
                server = self.server
            else:
                self.term = "SC"
                self._close()
                return
        self.server = server
        be.connect(server, self, protocol_class=TcpServer)

    def server_connected(self, side) -> None:
        if not self.open:
            side.owner = None
            side.transport.loseConnection()
            return
        self.t_connect = self.reactor.seconds()
        self.server_side = side
        self.server.cur_conns += 1
        self.be.cur_conns += 1
        side.transport.registerProducer(self, True)
        self.transport.registerProducer(side, True)
        if self.be.send_proxy.get(self.server.name):
            side.write(proxy_v1_header(self.sess))
        if self.early:
            for piece in self.early:
                side.write(piece)
            self.early = []
            self.early_size = 0
            self.transport.resumeProducing()
        if self.eof:
            side.half_close()
        self._arm()

    def server_connect_failed(self, server, reason) -> None:
        if not self.open:
            return
        if self.retries_left > 0:
            self.retries_left -= 1
            if self.be.redispatch and self.retries_left == 0:
                self.tried = self.tried | {server.name}
            self.retry_call = self.reactor.callLater(min(self.be.connect_timeout, 1.0), self._retry)
            return
        self.term = "SC"
        self._close()

    def _retry(self) -> None:
        self.retry_call = None
        if self.open:
            self._connect()

    def _arm(self) -> None:
        be = self.be
        timeout = be.tunnel_timeout if be.proxy.timeouts.tunnel is not None else self.fe.client_timeout
        self.reads_at_arm = self.reads
        self.timer.arm(timeout, "idle")

    def _timed_out(self, kind: str) -> None:
        if not self.open:
            return
        side = self.server_side
        if self.reads != self.reads_at_arm or (side is not None and side.reads != side.reads_at_arm):
            if side is not None:
                side.reads_at_arm = side.reads
            self._arm()
            return
        self.term = "cD" if side is not None else "cC"
        self._close(abort=True)

    def dataReceived(self, data: bytes) -> None:
        self.reads += 1
        self.bytes_in += len(data)
        side = self.server_side
        if side is not None:
            side.write(data)
            return
        self.early.append(data)
        self.early_size += len(data)
        if self.early_size > MAX_EARLY_DATA:
            self.transport.pauseProducing()

    def server_data(self, data: bytes) -> None:
        self.bytes_out += len(data)
        self.write(data)

    def server_closed(self, side, clean: bool) -> None:
        if self.server_side is side:
            if not clean and self.term == "--":
                self.term = "SD"
            self._close()

    def server_half_closed(self) -> None:
        if self.open and hasattr(self.transport, "loseWriteConnection"):
            self.transport.loseWriteConnection()

    def readConnectionLost(self) -> None:
        self.eof = True
        if self.server_side is not None:
            self.server_side.half_close()

    def writeConnectionLost(self) -> None:
        self._close()

    # IPushProducer for the server transport
    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self._close(abort=True)

    def _close(self, abort: bool = False) -> None:
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
        self.open = False
        self.timer.close()  # lets go of this connection: freed at once, without the collector
        if self.retry_call is not None and self.retry_call.active():
            self.retry_call.cancel()
        side, self.server_side = self.server_side, None
        if side is not None:
            side.owner = None
            self.server.cur_conns -= 1
            self.be.cur_conns -= 1
            side.transport.loseConnection()
        if self in fe.connections:
            fe.connections.discard(self)
            fe.cur_conns -= 1
            fe.active.value -= 1
            if fe.maxconn is not None:
                fe.gate.closed(fe.cur_conns)
            if fe.tcplog:
                now = self.reactor.seconds()
                be = self.be
                fe.sink.emit(
                    format_tcplog(
                        src=self.sess.src,
                        src_port=self.sess.src_port,
                        accept_time=self.accept_time,
                        frontend=fe.name,
                        backend=be.name if be is not None else fe.name,
                        server=self.server.name if self.server is not None else "<NOSRV>",
                        t_queue=0 if self.server is not None else -1,
                        t_connect=round((self.t_connect - self.accept_time) * 1000)
                        if self.t_connect is not None
                        else -1,
                        t_total=round((now - self.accept_time) * 1000),
                        bytes_out=self.bytes_out,
                        termination=self.term,
                        actconn=fe.active.value,
                        feconn=fe.cur_conns,
                        beconn=be.cur_conns if be is not None else 0,
                        srvconn=self.server.cur_conns if self.server is not None else 0,
                        retries=(be.retries - self.retries_left) if be is not None else 0,
                    )
                )
        if fe.tracking is not None and any(s is not None for s in self.sess.stkctr):
            if fe.count_bytes:
                fe.tracking.on_bytes(self.sess, self.bytes_in, self.bytes_out)
            fe.tracking.on_session_end(self.sess)


@implementer(IPushProducer, IHalfCloseableProtocol)
class TcpServer(protocol.Protocol):
    """The server side of a tcp-mode connection."""

    def __init__(self, backend, server):
        self.backend = backend
        self.server = server
        self.owner = None
        self.reads = 0
        self.reads_at_arm = 0

    def connectionMade(self) -> None:
        self.write = direct_writer(self.transport)
        if self.owner is not None:
            self.owner.server_connected(self)

    def dataReceived(self, data: bytes) -> None:
        self.reads += 1
        if self.owner is not None:
            self.owner.server_data(data)

    def half_close(self) -> None:
        if hasattr(self.transport, "loseWriteConnection"):
            self.transport.loseWriteConnection()
        else:
            self.transport.loseConnection()

    def readConnectionLost(self) -> None:
        if self.owner is not None:
            self.owner.server_half_closed()

    def writeConnectionLost(self) -> None:
        self.transport.loseConnection()

    def connectionLost(self, reason=None) -> None:
        owner, self.owner = self.owner, None
        if owner is not None:
            from twisted.internet.error import ConnectionDone

            owner.server_closed(self, reason is None or reason.check(ConnectionDone) is not None)

    def pauseProducing(self) -> None:
        self.transport.pauseProducing()

    def resumeProducing(self) -> None:
        self.transport.resumeProducing()

    def stopProducing(self) -> None:
        self.transport.abortConnection()
