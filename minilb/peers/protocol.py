"""Owns the Twisted side of one peers connection: bytes in and out of a `PeersSync` link.

`PeerProtocol` does no protocol work itself: it hands received bytes to the section's
`PeersSync`, writes what the link has queued, closes the transport once the link says
so, and tells the owning service to re-arm its timer.  It registers as a streaming
producer so that a full transport pauses pushes (`Link.paused`) instead of growing
the write buffer without bound.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Factory, Protocol
from zope.interface import implementer

from minilb import reloadtrace
from minilb.peers.sync import Link, PeersSync

#: a big read is applied in slices of this many bytes (about 500 entry updates)...
RECEIVE_SLICE = 16384
#: ...slice after slice for at most this long (seconds) per reactor turn: long enough
#: that a fast decoder does not spend its time turning the reactor (a full resync is
#: thousands of slices), short enough that traffic keeps flowing (no long stall)
RECEIVE_TURN = 0.004


@implementer(IPushProducer)
class PeerProtocol(Protocol):
    """One peers connection: outgoing when ``peer_name`` is given, else accepted."""

    def __init__(self, sync: PeersSync, owner: Any, peer_name: str | None = None):
        self.sync = sync
        self.owner = owner  # has .changed(): re-arm the section timer
        self.peer_name = peer_name
        self.link: Link | None = None
        self._closing = False
        self._backlog: list[bytes] = []
        self._draining = False
        self._paused = False  # we paused the transport while a big read drains
        #: reads, bytes read, slices applied, writes, bytes written (for the trace)
        self.counts = [0, 0, 0, 0, 0]

    def connectionMade(self) -> None:
        if self.peer_name is not None:
            self.link = self.sync.connection_made(self.peer_name)
            if self.link is None:  # a session with that peer appeared meanwhile
                self.transport.loseConnection()
                return
        else:
            self.link = self.sync.incoming()
        self.link.wake = self.flush
        self.transport.registerProducer(self, True)
        self.flush()
        self.owner.changed()

    def dataReceived(self, data: bytes) -> None:
        if self.link is None or self._closing:
            return
        counts = self.counts
        counts[0] += 1
        counts[1] += len(data)
        if self._draining:  # keep the order: behind what is still waiting
            self._backlog.append(data)
            return
        reactor = getattr(self.owner, "reactor", None)
        if reactor is None or len(data) <= RECEIVE_SLICE:
            self._receive(data)
            return
        # a big read (a full resync) is applied a slice at a time, `RECEIVE_TURN` per
        # reactor turn; a read that takes more turns pauses the transport meanwhile
        self._backlog.append(data)
        self._draining = True
        self._drain(reactor)

    def _drain(self, reactor: Any) -> None:
        backlog = self._backlog
        until = reactor.seconds() + RECEIVE_TURN
        while self.link is not None and not self._closing and backlog:
            data = backlog[0]
            if len(data) > RECEIVE_SLICE:
                backlog[0] = data[RECEIVE_SLICE:]
                data = data[:RECEIVE_SLICE]
            else:
                backlog.pop(0)
            self._receive(data)
            if backlog and reactor.seconds() >= until:
                if not self._paused and self.transport is not None:
                    self._paused = True
                    self.transport.pauseProducing()
                reactor.callLater(0, self._drain, reactor)
                return
        backlog.clear()
        self._draining = False
        if self._paused and self.transport is not None and self.link is not None:
            self._paused = False
            self.transport.resumeProducing()

    def _receive(self, data: bytes) -> None:
        if self.link is None:
            return
        self.counts[2] += 1
        self.sync.data_received(self.link, data)
        self.flush()
        self.owner.changed()

    def connectionLost(self, reason: Any = None) -> None:
        if reloadtrace.ENABLED and self.link is not None:
            reads, read, slices, writes, written = self.counts
            reloadtrace.mark(
                f"peers link to {self.link.peer.name if self.link.peer else '?'} closed: "
                f"{reads} reads, {read} bytes, {slices} slices applied; {writes} writes, {written} bytes"
            )
        if self.link is not None:
            self.link.wake = None
            self.sync.connection_lost(self.link)
            self.link = None
            self.owner.changed()

    def flush(self) -> None:
        """Write what the link queued; close once it is finished."""
        link = self.link
        if link is None or self.transport is None:
            return
        data = link.data_to_send()
        if data:
            self.counts[3] += 1
            self.counts[4] += len(data)
            self.transport.write(data)
        if link.should_close and not self._closing:
            self._closing = True
            self.transport.loseConnection()

    # IPushProducer: the transport's buffer is full / drained
    def pauseProducing(self) -> None:
        if self.link is not None:
            self.link.paused = True

    def resumeProducing(self) -> None:
        if self.link is not None:
            self.sync.resume(self.link)
            self.flush()
            self.owner.changed()

    def stopProducing(self) -> None:
        if self.link is not None:
            self.link.paused = True


class PeerFactory(Factory):
    """Builds `PeerProtocol` for the listener (``peer_name`` None) or for one dial."""

    def __init__(self, sync: PeersSync, owner: Any, peer_name: str | None = None):
        self.sync = sync
        self.owner = owner
        self.peer_name = peer_name

    def buildProtocol(self, addr: Any) -> PeerProtocol:
        return PeerProtocol(self.sync, self.owner, self.peer_name)
