"""Owns one worker process's services on sockets inherited from the master: the
`WorkerService` (frontends, backends, tables), the stats sockets, one
`PeersService` per peers section, the private CLI the master forwards ``@N``
commands to, and the soft stop that hands the tables to the successor.

`WorkerProcess(config, reactor, fds, has_old_process=...)`: ``fds`` maps listener
keys (`minilb.master.control.listener_specs`) to inherited fd numbers; every
frontend ``bind`` is rewritten to ``fd@N`` so that the worker service adopts the
socket instead of binding it.  `start()` listens everywhere; `soft_stop()` stops
accepting (frontends, stats sockets, peer listeners), teaches every peers-section
table to the new worker at the local peer address (even without remote peers, and
even before this worker finished its own initial resync), lets in-flight requests
finish (idle keep-alive connections close, busy ones answer with
``Connection: close``) and fires when all of that is done.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet import defer

from minilb.config.model import Address
from minilb.master.control import bind_spec, stats_spec

WORKER_CLI_KEY = "worker-cli"


def adopt_binds(config: Any, fds: dict[str, int]) -> Any:
    """``config`` with every enabled frontend's bind addresses replaced by ``fd@N``."""
    proxies = []
    for px in config.proxies:
        if px.is_frontend and not px.disabled and px.binds:
            binds = []
            for bind in px.binds:
                fd = fds.get(bind_spec(bind).key)
                if fd is None:
                    raise OSError(f"no inherited socket for bind '{bind.address}' ({bind.origin})")
                binds.append(attrs.evolve(bind, address=Address("fd", fd=fd, text=f"fd@{fd}")))
            px = attrs.evolve(px, binds=tuple(binds))
        proxies.append(px)
    return attrs.evolve(config, proxies=tuple(proxies))


class WorkerProcess:
    def __init__(
        self,
        config: Any,
        reactor: Any,
        fds: dict[str, int],
        *,
        has_old_process: bool = False,
        log: Callable[[str, str], None],
    ):
        from minilb.peers.service import PeersService, register_show_peers
        from minilb.runtime.cli import CommandProcessor
        from minilb.worker.service import WorkerService

        self.config = config
        self.reactor = reactor
        self.fds = dict(fds)
        self.log = log
        self.service = WorkerService(adopt_binds(config, fds), reactor, log=log)
        self.processor = CommandProcessor(self.service.tables.values())
        self.peers: list[Any] = []
        for section in config.peers:
            if section.disabled:
                continue
            own = {spec.name for spec in section.tables}
            tables = [
                t for t in self.service.tables.values() if t.spec.name in own or t.spec.peers == section.name
            ]
            self.peers.append(
                PeersService(
                    reactor,
                    section,
                    config.localpeer,
                    tables,
                    has_old_process=has_old_process,
                    listen=False,
                    log=lambda text: log("notice", text),
                )
            )
        register_show_peers(self.processor, lambda: self.peers)
        self.stats_ports: list[Any] = []
        self.cli_port: Any = None
        self._stopping: defer.Deferred | None = None

    def _adopt(self, fd: int, factory: Any) -> Any:
        from minilb.net.endpoints import adopt_listener

        return adopt_listener(self.reactor, fd, factory)

    def start(self) -> None:
        from minilb.peers.protocol import PeerFactory
        from minilb.runtime.stats_socket import StatsSocketFactory

        self.service.startService()
        for sock in self.config.global_.stats_sockets:
            fd = self.fds.get(stats_spec(sock).key)
            if fd is not None:
                self.stats_ports.append(self._adopt(fd, StatsSocketFactory(self.processor, sock.level)))
        for peers in self.peers:
            peers.startService()
            bind = peers.section.bind
            if bind is not None:
                fd = self.fds.get(bind_spec(bind).key)
                if fd is None:
                    raise OSError(f"no inherited socket for peers '{peers.section.name}' ({bind.address})")
                peers.port = self._adopt(fd, _maybe_tls(bind, PeerFactory(peers.sync, peers)))
        fd = self.fds.get(WORKER_CLI_KEY)
        if fd is not None:
            self.cli_port = self._adopt(fd, StatsSocketFactory(self.processor, "admin"))

    def soft_stop(self) -> defer.Deferred:
        """See the module docstring; fires once the tables are handed over and the
        connections drained (each bounded: 5 s for a hand-over, hard-stop-after or
        30 s for the drain)."""
        if self._stopping is not None:
            return self._stopping
        for port in self.stats_ports:
            port.stopListening()
        self.stats_ports = []
        handovers = [peers.begin_handover() for peers in self.peers]
        for d, peers in zip(handovers, self.peers, strict=True):
            d.addCallback(self._handed_over, peers)
        drained = self._stop_traffic()
        done = defer.DeferredList([*handovers, drained], consumeErrors=True)
        done.addCallback(lambda _: self._finish())
        self._stopping = done
        return done

    def _stop_traffic(self) -> defer.Deferred:
        """`WorkerService.stopService`, except that a connection accepted but still
        waiting for its first request is not closed as idle: the client sent (or is
        sending) a request to a socket it cannot know is stopping, so it is served
        once, with ``Connection: close``, like a busy one.  (Workaround kept here
        until the frontend's ``graceful_close`` makes that distinction itself.)"""
        fresh = []
        for _, factory in self.service.frontends:
            for conn in list(getattr(factory, "connections", ())):
                if getattr(conn, "requests", 1) == 0 and getattr(conn, "head", None) is None:
                    factory.connections.discard(conn)
                    fresh.append((factory, conn))
        try:
            return defer.maybeDeferred(self.service.stopService)
        finally:
            for factory, conn in fresh:
                if conn.open:
                    factory.connections.add(conn)

    def _handed_over(self, ok: bool, peers: Any) -> bool:
        name = peers.section.name
        if ok:
            self.log("notice", f"peers '{name}': tables handed over to the new worker")
        else:
            self.log("warning", f"peers '{name}': the new worker did not confirm the hand-over")
        return ok

    def _finish(self) -> defer.Deferred:
        stops = [defer.maybeDeferred(p.stopService) for p in self.peers]
        if self.cli_port is not None:
            stops.append(defer.maybeDeferred(self.cli_port.stopListening))
            self.cli_port = None
        return defer.DeferredList(stops, consumeErrors=True)


def _maybe_tls(bind: Any, factory: Any) -> Any:
    if not bind.tls.enabled:
        return factory
    from twisted.protocols.tls import TLSMemoryBIOFactory

    from minilb.net.endpoints import ServerContextFactory

    return TLSMemoryBIOFactory(ServerContextFactory(bind.tls), False, factory)
