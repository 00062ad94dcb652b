"""Owns the lean TCP transports of `minilb.tcp.reactor.FastEPollReactor`: accepting,
dialling and closing a connection with fewer system calls and Python objects than
Twisted's ``tcp.Port``/``tcp.Client``, while staying Twisted's own transport classes
(subclasses of ``tcp.Server`` and ``tcp.Client``: ``ITCPTransport``, TLS, producers,
half-close and abort behave as Twisted's).

What a new connection costs in Twisted, and what is left here:

* **accept** (`LeanPort`): Twisted wraps each accept batch in a log buffer and a
  generator, and builds a log prefix and a ``repr`` string per connection.  Here the
  loop calls ``accept`` directly and the strings are made only when asked for.  When
  the port listens on one address (not a wildcard), every accepted socket has that
  local address: ``getHost()`` answers it without a ``getsockname`` call.  Any accept
  error other than "nothing left" goes to Twisted's own loop (its EMFILE reserve, its
  logging).
* **dial** (`LeanConnector`, `LeanClient`): Twisted defers the attempt with
  ``callLater(0)`` and a Deferred, creates the socket with two ``setblocking`` calls,
  then waits for writability (two more ``epoll_ctl``, ``getsockopt``, a second
  ``connect``).  Here the socket is created non-blocking and connects at once; a
  second ``connect`` tells whether the handshake already completed (on loopback the
  kernel finishes it inside the first call), and then the protocol is connected once
  the current loop turn's events are dispatched (`FastEPollReactor.callSoon`), with no
  connect timeout to arm and cancel.  Otherwise
  the socket waits for writability as in Twisted.  Only IPv4 literals without a bind
  address take this path; the rest is Twisted's ``tcp.Connector``.
* **close** (`_LeanClose`): Twisted's ``loseConnection`` stops reading, starts
  writing, and on the next turn sends an empty buffer, stops writing and calls
  ``shutdown`` before ``close``.  Here, when nothing is buffered and no producer is
  registered, the transport stops reading and is closed once the current loop turn's
  events are dispatched (``close`` alone: the socket is close-on-exec and never shared
  with another process, so ``shutdown`` adds nothing); otherwise Twisted's path flushes first, as always.
  ``connectionLost`` still runs later than ``loseConnection``, never inside it.
"""

from __future__ import annotations

import errno
import functools
import socket

from twisted.internet import abstract, address, error, tcp
from twisted.internet.protocol import Protocol
from twisted.python import failure, log

__all__ = ["LeanConnector", "LeanClient", "LeanPort", "LeanServer"]

_DONE = failure.Failure(error.ConnectionDone())
_ABORTED = failure.Failure(error.ConnectionAborted())
_IN_PROGRESS = (errno.EINPROGRESS, errno.EALREADY, errno.EWOULDBLOCK)
_NONBLOCKING_STREAM = socket.SOCK_STREAM | getattr(socket, "SOCK_NONBLOCK", 0)


def _ignore(*args, **kwargs) -> None:
    return None


class _LeanClose:
    """``loseConnection``/``abortConnection`` without the extra loop turn (see the module
    docstring); mixed in before Twisted's transport class."""

    def loseConnection(self) -> None:
        if (
            not self.connected
            or self.disconnecting
            or self._writeDisconnected
            or self.producer is not None
            or self._tempDataLen
            or self.offset != len(self.dataBuffer)
        ):
            super().loseConnection()  # buffered data or a producer: Twisted's flush path
            return
        self.disconnecting = 1
        self.stopReading()
        self.reactor.callSoon(self._closeSoon)

    def _closeSoon(self) -> None:
        if not self.connected or self.disconnected or self._aborting:
            return
        if self.producer is not None or self._tempDataLen or self.offset != len(self.dataBuffer):
            self.startWriting()  # written to after loseConnection: doWrite flushes, then closes
            return
        self.connectionLost(_DONE)

    def abortConnection(self) -> None:
        if self.disconnected or self._aborting:
            return
        self._aborting = True
        self.stopReading()
        self.stopWriting()
        self.doRead = self.doWrite = _ignore
        self.reactor.callSoon(self.connectionLost, _ABORTED)

    def connectionLost(self, reason) -> None:
        """``tcp.Connection.connectionLost``, with a plain isinstance for an abort."""
        if "socket" not in self.__dict__:
            return  # once only, as Twisted
        # FileDescriptor.connectionLost, asking the reactor only about what it watches
        self.disconnected = 1
        self.connected = 0
        if self.producer is not None:
            self.producer.stopProducing()
            self.producer = None
        fd = self.socket.fileno()
        reactor = self.reactor
        if fd in reactor._reads:
            self.stopReading()
        if fd in reactor._writes:
            self.stopWriting()
        self._closeSocket(not isinstance(reason.value, error.ConnectionAborted))
        protocol = self.protocol
        del self.protocol
        del self.socket
        del self.fileno
        protocol.connectionLost(reason)

    def _closeSocket(self, orderly: bool) -> None:
        if orderly:
            try:
                self.socket.close()  # no shutdown: nothing else holds this socket
            except OSError:
                pass
            return
        super()._closeSocket(orderly)

    # the log strings are made when something asks for them, not per connection
    @property
    def logstr(self) -> str:
        value = self.__dict__.get("_logstr")
        if value is None:
            value = self._makeLogstr()
        return value

    @logstr.setter
    def logstr(self, value: str) -> None:
        self.__dict__["_logstr"] = value


class LeanServer(_LeanClose, tcp.Server):
    """The transport of an accepted connection (`LeanPort`)."""

    def __init__(self, sock, protocol, client, server, sessionno, reactor):
        # Connection.__init__ and FileDescriptor.__init__, without the log strings
        self.reactor = reactor
        self._tempDataBuffer = []
        self._tempDataLen = 0
        sock.setblocking(False)
        self.socket = sock
        self.fileno = sock.fileno
        self.protocol = protocol
        if len(client) != 2:
            self._addressType = address.IPv6Address
        self.server = server
        self.client = client
        self.sessionno = sessionno
        self.hostname = client[0]
        self.startReading()
        self.connected = 1

    def _makeLogstr(self) -> str:
        protocol = self.__dict__.get("protocol")
        prefix = self._getLogPrefix(protocol) if protocol is not None else "-"
        return f"{prefix},{self.sessionno},{self.hostname}"

    @property
    def repstr(self) -> str:
        value = self.__dict__.get("_repstr")
        if value is None:
            protocol = self.__dict__.get("protocol")
            name = protocol.__class__.__name__ if protocol is not None else "-"
            port = self.server._realPortNumber if self.server is not None else None
            value = f"<{name} #{self.sessionno} on {port}>"
        return value

    @repstr.setter
    def repstr(self, value: str) -> None:
        self.__dict__["_repstr"] = value

    _peer = None

    def getPeer(self):
        peer = self._peer
        if peer is None:
            peer = self._peer = self._addressType("TCP", *self.client)
        return peer

    def getHost(self):
        host = self.server._fixedHost if self.server is not None else None
        if host is not None:
            return host
        return super().getHost()


class LeanPort(tcp.Port):
    """A TCP listening port accepting into `LeanServer` transports."""

    transport = LeanServer
    _fixedHost = None  # the local address of every accepted socket, when it is one

    def startListening(self) -> None:
        super().startListening()
        self._fixedHost = self._local_address()

    def _local_address(self):
        if self.socket.family != socket.AF_INET:
            return None
        try:
            if self.socket.getsockopt(socket.SOL_IP, getattr(socket, "IP_TRANSPARENT", 19)):
                return None  # transparent proxying: accepted sockets carry other addresses
        except OSError:
            pass
        host, port = self.socket.getsockname()[:2]
        if host == "0.0.0.0":
            return None
        return address.IPv4Address("TCP", host, port)

    def doRead(self) -> None:
        try:
            lsock = self.socket
            accept = lsock._accept
            family = lsock.family
            factory = self.factory
            reactor = self.reactor
            make_address = self._addressType
            limit = self.numberAccepts
            accepted = 0
            while accepted < limit:
                try:
                    fd, addr = accept()
                except BlockingIOError:
                    break
                except OSError:
                    # EMFILE, ENOBUFS, ECONNABORTED...: Twisted's loop knows them all
                    tcp.Port.doRead(self)
                    return
                accepted += 1
                sock = socket.socket(family, socket.SOCK_STREAM, 0, fd)
                if len(addr) == 4:  # IPv6: the scope id belongs in the host
                    host = socket.getnameinfo(addr, socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
                    addr = (host[0], *addr[1:])
                peer = make_address("TCP", *addr)
                protocol = factory.buildProtocol(peer)
                if protocol is None:
                    sock.close()
                    continue
                session = self.sessionno
                self.sessionno = session + 1
                transport = LeanServer(sock, protocol, addr, self, session, reactor)
                transport._peer = peer  # the same (immutable) address for getPeer()
                protocol.makeConnection(transport)
            # as Twisted: accept more per turn while the backlog keeps filling the batch
            self.numberAccepts = limit + 20 if accepted == limit else max(1, accepted)
        except BaseException:
            log.deferr()


@functools.lru_cache(maxsize=1024)
def _is_ipv4(host: str) -> bool:
    return abstract.isIPAddress(host)


@functools.lru_cache(maxsize=1024)
def _server_address(host: str, port: int) -> address.IPv4Address:
    """The peer address of dialled connections: one (immutable) object per server."""
    return address.IPv4Address("TCP", host, port)


class LeanClient(_LeanClose, tcp.Client):
    """The transport of a connection dialled by `LeanConnector` (an IPv4 literal)."""

    established = False  # the handshake completed inside connect(): no timeout needed

    def __init__(self, host: str, port: int, connector, reactor):
        self.connector = connector
        self.addr = self.realAddress = (host, port)
        self._requiresResolution = False
        self.reactor = reactor
        self._tempDataBuffer = []
        self._tempDataLen = 0
        self.protocol = None
        try:  # non-blocking from the start: no setblocking call
            sock = socket.socket(socket.AF_INET, _NONBLOCKING_STREAM)
        except OSError as e:
            reactor.callSoon(self.failIfNotConnected, error.ConnectBindError(e.args[0], e.args[1]))
            return
        if not _NONBLOCKING_STREAM & ~socket.SOCK_STREAM:
            sock.setblocking(False)
        self.socket = sock
        self.fileno = sock.fileno
        try:
            result = sock.connect_ex(self.realAddress)
            if result in _IN_PROGRESS:
                result = sock.connect_ex(self.realAddress)  # done already? (loopback: yes)
        except OSError as e:
            result = e.args[0]
        if result == 0 or result == errno.EISCONN:
            self.established = True
            reactor.callSoon(self._soonConnectDone)
        elif result in _IN_PROGRESS:
            self.doRead = self.doWrite = self.doConnect  # Twisted's wait for writability
            self.startWriting()
        else:
            reactor.callSoon(
                self.failIfNotConnected, error.getConnectError((result, errno.errorcode.get(result, "")))
            )

    def _soonConnectDone(self) -> None:
        if self.connected or self.disconnected or "connector" not in self.__dict__:
            return  # stopped (stopConnecting, a failure) before this turn ended
        self._connectDone()

    def getPeer(self):
        return _server_address(*self.realAddress)

    def _connectDone(self) -> None:
        protocol = self.connector.buildProtocol(self.getPeer())
        self.connected = 1
        if protocol is None:
            self.protocol = Protocol()
            self.loseConnection()
            return
        self.protocol = protocol
        self.startReading()
        protocol.makeConnection(self)

    def _makeLogstr(self) -> str:
        protocol = self.__dict__.get("protocol")
        prefix = self._getLogPrefix(protocol) if protocol is not None else "Uninitialized"
        return f"{prefix},client"

    def connectionLost(self, reason) -> None:
        if not self.connected:  # as Twisted's client: a connection that never was
            self.failIfNotConnected(error.ConnectError(string=reason))
            return
        connector = self.connector
        _LeanClose.connectionLost(self, reason)
        connector.connectionLost(reason)
        # the connector and its transport refer to each other: let go (unless the
        # factory dialled again from clientConnectionLost), so both are freed at once
        if connector.transport is self:
            connector.transport = None


class LeanConnector(tcp.Connector):
    """``connectTCP`` to an IPv4 literal without a bind address, with `LeanClient`."""

    def __init__(self, host: str, port: int, factory, timeout, reactor):
        # tcp.Connector.__init__ without its service-name and IPv6 checks (see lean_connectable)
        self.host = host
        self.port = port
        self.bindAddress = None
        self.state = "disconnected"
        self.reactor = reactor
        self.factory = factory
        self.timeout = timeout

    def _makeTransport(self):
        return LeanClient(self.host, self.port, self, self.reactor)

    def connect(self) -> None:
        if self.state != "disconnected":
            raise RuntimeError("can't connect in this state")
        self.state = "connecting"
        if not self.factoryStarted:
            self.factory.doStart()
            self.factoryStarted = 1
        self.transport = transport = self._makeTransport()
        if self.timeout is not None and not transport.established:
            self.timeoutID = self.reactor.callLater(
                self.timeout, transport.failIfNotConnected, error.TimeoutError()
            )
        self.factory.startedConnecting(self)


def lean_connectable(host, port, bindAddress) -> bool:
    """Whether `LeanConnector` can dial this: an IPv4 literal, a numeric port, no bind address."""
    return bindAddress is None and isinstance(port, int) and isinstance(host, str) and _is_ipv4(host)
