"""Owns the stats socket's Twisted adapter: a line protocol on a ``stats socket``
address that feeds each line to a `minilb.runtime.cli.CliSession` and writes back
what it answers.

Non-interactive connections run the lines that arrived together, then close;
``prompt`` keeps the connection open with a ``"> "`` prompt; ``quit`` closes.
Answers are written chunk by chunk as a pull producer, so dumping a big table
neither builds one huge string nor fills the transport's buffer; lines received
meanwhile wait (at most `MAX_PENDING_LINES`).  Lines longer than ``max_line`` bytes
close the connection (HAProxy's CLI buffer is one ``tune.bufsize``).  The level
comes from the bind line (``level admin``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator

from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver
from zope.interface import implementer

from minilb.runtime.cli import CliSession, CommandProcessor

MAX_PENDING_LINES = 64
#: characters of answer gathered into one write (a table dump chunk is bigger alone)
WRITE_CHUNK = 4096


@implementer(IPullProducer)
class StatsSocketProtocol(LineOnlyReceiver):
    delimiter = b"\n"

    def __init__(self, session: CliSession, max_line: int):
        self.session = session
        self.MAX_LENGTH = max_line
        self._pending: deque[bytes] = deque()
        self._output: Iterator[str] | None = None
        self._close_when_idle = False
        self._in_chunk = False

    # ------------------------------------------------------------------ input
    def dataReceived(self, data: bytes) -> None:
        self._in_chunk = True
        try:
            super().dataReceived(data)
        finally:
            self._in_chunk = False
        self._maybe_close()

    def lineReceived(self, line: bytes) -> None:
        if self.session.quit:
            return
        if self._output is not None or self._pending:
            if len(self._pending) >= MAX_PENDING_LINES:
                self.transport.loseConnection()
                return
            self._pending.append(line)
            return
        self._start(line)

    def lineLengthExceeded(self, line: bytes) -> None:
        self.transport.loseConnection()

    # ------------------------------------------------------------------ output
    def _start(self, line: bytes) -> None:
        self._output = self.session.iter_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        self.transport.registerProducer(self, False)

    def resumeProducing(self) -> None:
        output = self._output
        if output is None:
            return
        # small chunks (one per command of a ``;`` list) go out together, up to about
        # `WRITE_CHUNK` bytes per call: one write and one reactor turn per command
        # made a batch of ``set table`` commands crawl
        parts: list[str] = []
        size = 0
        for chunk in output:
            if chunk:
                parts.append(chunk)
                size += len(chunk)
                if size >= WRITE_CHUNK:
                    self.transport.write("".join(parts).encode("utf-8", "replace"))
                    return
        if parts:
            self.transport.write("".join(parts).encode("utf-8", "replace"))
        # this line is answered
        self._output = None
        self.transport.unregisterProducer()
        if self.session.quit:
            self._pending.clear()
            self.transport.loseConnection()
            return
        if self.session.closing:
            self._close_when_idle = True
        if self._pending:
            self._start(self._pending.popleft())
            return
        self._maybe_close()

    def stopProducing(self) -> None:
        self._output = None
        self._pending.clear()

    def _maybe_close(self) -> None:
        # non-interactive: close once every line that arrived with the first one is answered
        if self._close_when_idle and self._output is None and not self._pending and not self._in_chunk:
            self.transport.loseConnection()


class StatsSocketFactory(Factory):
    """Builds one protocol per connection: ``StatsSocketFactory(processor, level)``,
    ``level`` from the ``stats socket`` line (user, operator or admin)."""

    def __init__(self, processor: CommandProcessor, level: str = "operator", max_line: int = 16384):
        self.processor = processor
        self.level = level
        self.max_line = max_line

    def buildProtocol(self, addr) -> StatsSocketProtocol:
        proto = StatsSocketProtocol(self.processor.session(self.level), self.max_line)
        proto.factory = self
        return proto


def listen_stats_sockets(reactor, stats_sockets, processor: CommandProcessor) -> list:
    """Listen on every ``stats socket`` of the global section (`Global.stats_sockets`);
    returns the listening ports.  Unix sockets replace a stale file and get the
    configured ``mode``; ``ipv4@``/``ipv6@`` addresses listen on TCP."""
    ports = []
    for sock in stats_sockets:
        factory = StatsSocketFactory(processor, sock.level)
        address = sock.address
        if address.family == "unix":
            if os.path.exists(address.path):
                os.unlink(address.path)
            mode = sock.mode if sock.mode is not None else 0o666
            ports.append(reactor.listenUNIX(address.path, factory, mode=mode))
        elif address.is_inet:
            host = (
                address.host if address.host not in ("", "*") else ("::" if address.family == "ipv6" else "")
            )
            ports.append(reactor.listenTCP(address.port or 0, factory, interface=host))
    return ports
