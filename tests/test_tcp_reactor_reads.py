"""FastEPollReactor's own read of a readable TCP connection ends the connection as
Twisted's path does: all the bytes arrive, the end of the stream is a clean close
(or a half-close for a half-closeable protocol), a reset is a lost connection, and an
exception of ``dataReceived`` is logged and loses the connection.  A private reactor
instance, raw client sockets on loopback, bounded loops."""

from __future__ import annotations

import socket
import struct

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
    def __init__(self, proto):
        self.reactor = FastEPollReactor()
        self.factory = protocol.Factory.forProtocol(proto)
        self.factory.conns = []
        self.port = self.reactor.listenTCP(0, self.factory, interface="127.0.0.1")
        self.client = socket.create_connection(("127.0.0.1", self.port.getHost().port), timeout=5)

    def run_until(self, done):
        for _ in range(500):  # bounded: loopback needs a few turns
            self.reactor.iterate(0.01)
            if done():
                return True
        return False

    def close(self):
        self.client.close()
        self.port.stopListening()
        for conn in self.factory.conns:
            if conn.lost is None:
                conn.transport.abortConnection()
        self.reactor.iterate(0)


def test_every_byte_arrives_and_the_end_of_stream_is_a_clean_close():
    site = Site(Recorder)
    try:
        payload = bytes(range(256)) * 1024  # several reads
        site.client.sendall(payload)
        site.client.shutdown(socket.SHUT_WR)
        assert site.run_until(lambda: site.factory.conns and site.factory.conns[0].lost is not None)
        conn = site.factory.conns[0]
        assert conn.got == payload
        assert conn.lost.check(error.ConnectionDone)
    finally:
        site.close()


def test_a_half_closeable_protocol_hears_the_half_close_and_may_still_answer():
    site = Site(HalfCloser)
    try:
        site.client.sendall(b"hello")
        site.client.shutdown(socket.SHUT_WR)
        answer = b""
        site.client.setblocking(False)

        def answered():
            nonlocal answer
            try:
                answer += site.client.recv(100)
            except BlockingIOError:
                pass
            return answer.endswith(b"hello") and site.factory.conns[0].lost is not None

        assert site.run_until(answered)
        assert answer == b"bye:hello"
    finally:
        site.close()


def test_a_reset_is_a_lost_connection():
    site = Site(Recorder)
    try:
        site.client.sendall(b"x")
        assert site.run_until(lambda: site.factory.conns and site.factory.conns[0].got == b"x")
        site.client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        site.client.close()  # RST
        assert site.run_until(lambda: site.factory.conns[0].lost is not None)
        assert site.factory.conns[0].lost.check(error.ConnectionLost)
    finally:
        site.close()


def test_an_exception_of_data_received_is_logged_and_loses_the_connection():
    site = Site(Raiser)
    errors = []

    def observer(event):
        if event.get("isError"):
            errors.append(event)

    log.addObserver(observer)
    try:
        site.client.sendall(b"x")
        assert site.run_until(lambda: site.factory.conns and site.factory.conns[0].lost is not None)
        assert site.factory.conns[0].lost.check(ValueError)
        assert any("bad bytes" in str(e["failure"].value) for e in errors if "failure" in e)
    finally:
        log.removeObserver(observer)
        site.close()
