"""FastEPollReactor's own read of a readable TCP connection ends the connection as
Twisted's path does: all the bytes arrive, the end of the stream is a clean close
(or a half-close for a half-closeable protocol), a reset is a lost connection, and an
exception of ``dataReceived`` is logged and loses the connection.  A private reactor
instance, raw client sockets on loopback, bounded loops."""

from __future__ import annotations

import socket
import struct
import sys

from twisted.internet import error, protocol
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.python import log
from zope.interface import implementer

from minilb.tcp.reactor import FastEPollReactor


class Recorder(protocol.Protocol):
    def connectionMade(self):
        self.factory.conns.append(self)
        self.got = b""
        self.lost = None

    def dataReceived(self, data):
        self.got += data

    def connectionLost(self, reason):
        self.lost = reason


@implementer(IHalfCloseableProtocol)
class HalfCloser(Recorder):
    def readConnectionLost(self):
        self.transport.write(b"bye:" + self.got)
        self.transport.loseConnection()

    def writeConnectionLost(self):
        pass


class Raiser(Recorder):
    def dataReceived(self, data):
        raise ValueError("bad bytes")


class Site:
    """A reactor with a listening port, one raw client socket connected to it."""

    def __init__(self, proto):
        self.reactor = FastEPollReactor()
        self.factory = protocol.Factory.forProtocol(proto)
        self.factory.conns = []
        self.port = self.reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.client = socket.create_connection(("127.0.0.1", self.port.getHost().port), timeout=5)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.client.close()
        self.port.stopListening()
        for conn in self.factory.conns:
            if conn.lost is None:
                conn.transport.abortConnection()
        self.reactor.iterate(0)

    def run_until(self, done) -> bool:
        for _ in range(500):  # bounded: loopback needs a few turns
            self.reactor.iterate(0.01)
            if done():
                return True
        return False

    def conn(self):
        return self.factory.conns[0] if self.factory.conns else None

    def run_until_lost(self):
        """The reason the server side's connection was lost with."""
        assert self.run_until(lambda: self.conn() is not None and self.conn().lost is not None)
        return self.conn().lost


def test_every_byte_arrives_and_the_end_of_stream_is_a_clean_close():
    with Site(Recorder) as site:
        payload = bytes(range(256)) * 1024  # several reads
        site.client.sendall(payload)
        site.client.shutdown(socket.SHUT_WR)
        assert site.run_until_lost().check(error.ConnectionDone)
        assert site.conn().got == payload


def test_a_half_closeable_protocol_hears_the_half_close_and_may_still_answer():
    with Site(HalfCloser) as site:
        site.client.sendall(b"hello")
        site.client.shutdown(socket.SHUT_WR)
        site.run_until_lost()
        site.client.settimeout(5)
        answer = b""
        while not answer.endswith(b"hello"):
            piece = site.client.recv(100)
            assert piece, answer
            answer += piece
        assert answer == b"bye:hello"


def test_a_reset_is_a_lost_connection():
    with Site(Recorder) as site:
        site.client.sendall(b"x")
        assert site.run_until(lambda: site.conn() is not None and site.conn().got == b"x")
        site.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        site.client.close()  # RST
        assert site.run_until_lost().check(error.ConnectionLost)


def test_an_exception_of_data_received_is_logged_and_loses_the_connection(monkeypatch):
    logged = []
    monkeypatch.setattr(log, "err", lambda *args, **kw: logged.append(sys.exc_info()[1]))
    with Site(Raiser) as site:
        site.client.sendall(b"x")
        assert site.run_until_lost().check(ValueError)
    assert [str(e) for e in logged] == ["bad bytes"]
