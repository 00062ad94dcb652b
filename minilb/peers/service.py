"""Owns the peers of one section at run time: the listener on the local peer's address,
the dials to remote peers (and, when stopping, to the successor at our own address),
and the one timer that drives the section's `PeersSync`.

The service only moves events: it builds the `PeersSync` over the section's stick
tables, listens with `minilb.net.endpoints.listen` (TLS when the bind says ``ssl``),
dials with `connect_address` using each peer's TLS settings (a refused connection or a
certificate that does not verify is a failed connect, logged with its reason), and
after every event re-arms a single `callLater` at `PeersSync.next_deadline()`.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer
from twisted.python.failure import Failure

from minilb import reloadtrace
from minilb.config.model import PeersSection
from minilb.net import endpoints
from minilb.peers.protocol import PeerFactory
from minilb.peers.sync import PeersSync

CONNECT_TIMEOUT_S = 1.0


class PeersService(Service):
    """One peers section (see the module docstring).

    ``tables`` are the `StickTable` objects replicated by this section; ``listen``
    False leaves the listener to someone else (e.g. a test or an inherited socket).
    """

    def __init__(
        self,
        reactor: Any,
        section: PeersSection,
        local_name: str,
        tables: Sequence[Any],
        *,
        rng: random.Random | None = None,
        pid: int | None = None,
        has_old_process: bool = False,
        max_updates: int = 200,
        listen: bool = True,
        log: Callable[[str], None] | None = None,
    ):
        self.reactor = reactor
        self.section = section
        self.local_name = local_name
        self.log = log or (lambda text: None)
        self.sync = PeersSync(
            local_name,
            [p.name for p in section.peers],
            tables,
            reactor,
            rng or random.Random(),
            pid if pid is not None else os.getpid(),
            has_old_process=has_old_process,
            max_updates=max_updates,
            log=self.log,
        )
        self._listen = listen
        self.port: Any = None
        self._timer: Any = None
        self._due: float | None = None
        self._dials: dict[str, defer.Deferred] = {}
        self._handover: defer.Deferred | None = None
        self._traced: tuple = ()
        for table in tables:
            table.on_local_update = self._local_update

    # ------------------------------------------------------------------ lifecycle
    def startService(self) -> None:
        super().startService()
        if self._listen and self.section.bind is not None and not self.section.disabled:
            self.port = endpoints.listen(self.reactor, self.section.bind, PeerFactory(self.sync, self))
        self.changed()

    def stopService(self) -> defer.Deferred | None:
        super().stopService()
        self.sync.close_all("stopping")
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        for dial in list(self._dials.values()):
            dial.cancel()
        if self.port is not None:
            port, self.port = self.port, None
            return defer.maybeDeferred(port.stopListening)
        return None

    def begin_handover(self) -> defer.Deferred:
        """Soft stop: stop listening, drop the remote peers and teach the successor at
        the local peer address.  The Deferred fires with True once the successor
        confirmed the whole transfer, False when it gave up (refused, or 5 s passed)."""
        if self._handover is None:
            self._handover = defer.Deferred()
            if self.port is not None:
                self.port.stopListening()
                self.port = None
            self.sync.begin_handover()
            self.changed()
        return self._handover

    # ------------------------------------------------------------------ events
    def _local_update(self, table: Any) -> None:
        if self._due is None or self._due > self.reactor.seconds():
            self._arm(self.reactor.seconds())

    def changed(self) -> None:
        """Something happened: start due dials and re-arm the timer."""
        if reloadtrace.ENABLED:
            self._trace()
        if self._handover is not None and self.sync.handover_done and not self._handover.called:
            self._handover.callback(self.sync.handover_ok)
        if self.section.disabled or not self.running:
            return
        for name in self.sync.dials_due():
            self._dial(name)
        deadline = self.sync.next_deadline()
        if deadline is not None:
            self._arm(deadline)

    def _trace(self) -> None:
        """Mark the steps of a hand-over (see `minilb.reloadtrace`), each once."""
        sync = self.sync
        local = sync.peers[self.local_name].link
        up = local is not None and local.session.established
        state = (
            sync.local_done,
            up,
            up and local.teach is None and local.awaiting_confirm,
            sync.handover_done,
        )
        if state == self._traced:
            return
        names = ("learn: local phase over", "local link established", "teach: all queued", "handed over")
        for name, now, before in zip(names, state, self._traced or (True, False, False, False), strict=True):
            if now and not before:
                role = "teach" if sync.stopping else "learn"
                rows = sum(len(t.table) for t in sync.tables)
                reloadtrace.mark(f"peers {self.section.name}: {name} ({role}, {rows} entries)")
        self._traced = state

    def _arm(self, when: float) -> None:
        if self._timer is not None and self._timer.active():
            if self._due is not None and self._due <= when:
                return
            self._timer.cancel()
        self._due = when
        self._timer = self.reactor.callLater(max(when - self.reactor.seconds(), 0), self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._due = None
        self.sync.tick()
        for link in list(self.sync.links):
            if link.wake is not None:
                link.wake()
        self.changed()

    def _dial(self, name: str) -> None:
        peer = self._peer_config(name)
        if peer is None or peer.address is None:
            self.sync.connection_failed(name)
            return
        tls = peer.tls if peer.tls.enabled else None
        try:
            dial = endpoints.connect_address(
                self.reactor, peer.address, PeerFactory(self.sync, self, name), CONNECT_TIMEOUT_S, tls
            )
        except Exception as exc:  # an address we cannot dial at all
            self.log(f"peers: cannot connect to peer '{name}': {exc}")
            self.sync.connection_failed(name)
            return
        self._dials[name] = dial

        def done(result: Any) -> None:
            self._dials.pop(name, None)

        def failed(failure: Failure) -> None:
            self._dials.pop(name, None)
            if failure.check(defer.CancelledError):
                return
            self.log(f"peers: connection to peer '{name}' failed: {failure.getErrorMessage()}")
            self.sync.connection_failed(name)
            self.changed()

        dial.addCallbacks(done, failed)

    def _peer_config(self, name: str) -> Any:
        for peer in self.section.peers:
            if peer.name == name:
                if peer.address is None and name == self.local_name and self.section.bind is not None:
                    # bind/server syntax: the successor listens on the section's bind
                    return _LocalTarget(self.section.bind.address, peer.tls)
                return peer
        return None


class _LocalTarget:
    def __init__(self, address: Any, tls: Any):
        self.address = address
        self.tls = tls


def register_show_peers(processor: Any, services: Callable[[], Sequence[PeersService]]) -> None:
    """Add ``show peers [dict|-] [section]`` to a `minilb.runtime.cli.CommandProcessor`;
    ``services()`` returns the running sections."""

    def show_peers(session: Any, args: list[str]) -> str:
        rest = args[2:]
        if rest and rest[0] in ("dict", "-"):
            rest = rest[1:]
        wanted = rest[0] if rest else None
        lines: list[str] = []
        for service in services():
            name = service.section.name
            if wanted is not None and name != wanted:
                continue
            addresses = {
                peer.name: (peer.address.text or f"{peer.address.host}:{peer.address.port}")
                for peer in service.section.peers
                if peer.address is not None
            }
            if service.section.bind is not None:
                bind = service.section.bind.address
                addresses.setdefault(service.local_name, bind.text or f"{bind.host}:{bind.port}")
            lines += service.sync.show_peers(name, addresses)
        return "".join(line + "\n" for line in lines)

    processor.register(
        "show peers",
        "show peers [dict|-] [section]",
        "dump some information about all the peers or this peers section",
        show_peers,
    )


def section_tables(section: PeersSection, tables: Sequence[Any]) -> list[Any]:
    """The stick tables a peers section replicates, in HAProxy's id order: the
    section's own ``table`` lines first, then the proxies' ``stick-table ... peers
    SECTION`` in the order given (``tables`` are `StickTable` objects with a ``spec``)."""
    own_names = [spec.name for spec in section.tables]
    by_name = {t.spec.name: t for t in tables}
    out = [by_name[name] for name in own_names if name in by_name]
    out += [t for t in tables if t.spec.peers == section.name and t.spec.name not in own_names]
    return out
