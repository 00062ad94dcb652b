"""Owns the stats socket's Twisted adapter: a line protocol on a ``stats socket``
address that feeds each line to a `minilb.runtime.cli.CliSession` and writes back
what it answers.

Non-interactive connections run the lines that arrived together, then close;
``prompt`` keeps the connection open with a ``"> "`` prompt; ``quit`` closes.
Lines longer than ``max_line`` bytes close the connection (HAProxy's CLI buffer is
one ``tune.bufsize``).  The level comes from the bind line (``level admin``).
"""

from __future__ import annotations

from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineOnlyReceiver

from minilb.runtime.cli import CliSession, CommandProcessor


class StatsSocketProtocol(LineOnlyReceiver):
    delimiter = b"\n"

    def __init__(self, session: CliSession, max_line: int):
        self.session = session
        self.MAX_LENGTH = max_line
        self._close_after_chunk = False

    def dataReceived(self, data: bytes) -> None:
        super().dataReceived(data)
        if self._close_after_chunk and self.transport is not None:
            self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        if self.session.quit:
            return
        output, close = self.session.handle_line(line.rstrip(b"\r").decode("utf-8", "replace"))
        if output:
            self.transport.write(output.encode("utf-8", "replace"))
        if self.session.quit:
            self.transport.loseConnection()
        elif close:
            # non-interactive: finish the lines that arrived together, then close
            self._close_after_chunk = True

    def lineLengthExceeded(self, line: bytes) -> None:
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
    import os

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
