"""Owns ``accept-proxy`` on bind lines: the PROXY protocol header (v1 or v2) read
before the proxied protocol starts.

Twisted's own wrapper starts the wrapped protocol at once, so a protocol that reads
its peer in ``connectionMade`` (sessions, ``tcp-request connection`` rules, logs)
would see the load balancer in front instead of the client.  `ProxyHeaderFactory`
starts the wrapped protocol only once the header is parsed, with ``getPeer`` and
``getHost`` already giving the addresses it carries; a missing or broken header
closes the connection, as HAProxy does.  The header is at most 107 bytes (v1) or
its announced length (v2, bounded by Twisted's parser).
"""

from __future__ import annotations

from twisted.internet.protocol import Protocol
from twisted.protocols.haproxy._exceptions import InvalidProxyHeader
from twisted.protocols.haproxy._v1parser import V1Parser
from twisted.protocols.haproxy._v2parser import V2Parser
from twisted.protocols.haproxy._wrapper import HAProxyProtocolWrapper, HAProxyWrappingFactory
from zope.interface import directlyProvides, providedBy

#: bytes accepted before a complete header (v2 headers carry TLVs; HAProxy caps them too)
MAX_HEADER = 4096


def proxy_v1_header(sess) -> bytes:
    """The PROXY v1 line a ``send-proxy`` server gets first, for a client session."""
    family = b"TCP6" if ":" in sess.src else b"TCP4"
    try:
        return b"PROXY %s %s %s %d %d\r\n" % (
            family,
            sess.src.encode("ascii"),
            sess.dst.encode("ascii"),
            sess.src_port,
            sess.dst_port,
        )
    except UnicodeEncodeError:
        return b"PROXY UNKNOWN\r\n"


class ProxyHeaderWrapper(HAProxyProtocolWrapper):
    started = False
    seen = 0

    def makeConnection(self, transport) -> None:
        directlyProvides(self, providedBy(transport))
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        # the wrapped protocol starts in dataReceived, once the header is known

    def dataReceived(self, data: bytes) -> None:
        if self.started:
            self.wrappedProtocol.dataReceived(data)
            return
        self.seen += len(data)
        parser = self._parser
        if parser is None:
            if len(data) >= 16 and data[:12] == V2Parser.PREFIX and data[12] & 0xF0 == 0x20:
                self._parser = parser = V2Parser()
            elif len(data) >= 8 and data[:5] == V1Parser.PROXYSTR:
                self._parser = parser = V1Parser()
            else:
                self.transport.loseConnection()
                return
        try:
            info, remaining = parser.feed(data)
        except InvalidProxyHeader:
            self.transport.loseConnection()
            return
        if info is None:
            if self.seen > MAX_HEADER:
                self.transport.loseConnection()
            return
        self._proxyInfo = info
        self.started = True
        self.wrappedProtocol.makeConnection(self)
        if remaining:
            self.wrappedProtocol.dataReceived(remaining)

    def connectionLost(self, reason) -> None:
        if self.started:
            super().connectionLost(reason)
        else:
            self.factory.unregisterProtocol(self)


class ProxyHeaderFactory(HAProxyWrappingFactory):
    protocol = ProxyHeaderWrapper
