"""Owns a worker's traffic: the service that turns a `Config` into listening proxies.

`WorkerService(config, reactor, *, log=None)` builds, once and up front, everything a
request touches: one `StickTable` per ``config.tables()`` spec, the compiled rules of
every proxy, one `BackendRuntime` per backend (servers, balancer, idle pools) with a
`HealthChecker` per ``check`` server, and one factory per frontend (HTTP or TCP by
``mode``).  ``startService`` binds every ``bind`` line and starts the checks;
``stopService`` stops accepting, lets busy connections finish their response (idle
ones close at once), and fires its Deferred when all are gone or after
``hard-stop-after`` (default 30 s) at the latest.

``log`` is a callable ``log(level, message)`` or a twisted Logger (as the health
checker takes); None prints to stderr.
"""

from __future__ import annotations

import random
import sys

from twisted.application import service
from twisted.internet import defer

from minilb.http.backend import BackendRuntime
from minilb.http.balance import ServerState, make_balancer
from minilb.http.frontend import ActiveCounter, FrontendRuntime
from minilb.http.log import flush_all, make_sink
from minilb.http.parse import Limits
from minilb.rules.compile import compile_rules
from minilb.stick import tracking
from minilb.stick.expiry import TableExpiry
from minilb.tcp.proxy import TcpFrontend

#: when nothing says otherwise, how long stopService waits for busy connections.
DEFAULT_DRAIN_SECONDS = 30.0


def _stderr_log(level: str, message: str) -> None:
    print(f"[{level.upper()}] {message}", file=sys.stderr, flush=True)


def _emit(log, level: str, message: str) -> None:
    if hasattr(log, "emit") and hasattr(log, "warn"):
        method = {"warning": log.warn, "alert": log.critical, "error": log.error}.get(level, log.info)
        method("{message}", message=message)
    else:
        log(level, message)


def _build_tables(config, reactor) -> dict:
    specs = config.tables()
    if not specs:
        return {}
    from minilb.stick.table import StickTable

    return {spec.name: StickTable(spec, reactor) for spec in specs}


def _compile_rules(config, tables) -> dict:
    """Compiled rules per proxy name (raises ConfigError on a bad rule)."""
    return compile_rules(config, tables)


def _tracking_module(tables) -> object | None:
    """The stick accounting hooks, only when some table exists to track into."""
    return tracking if tables else None


def _tables_store_bytes(tables) -> bool:
    """Whether some table stores a ``bytes_*`` counter: without one, the per-request
    byte accounting of tracked sessions is skipped."""
    return any(item.name.startswith("bytes_") for t in tables.values() for item in t.spec.store)


def bind_factory(bind, factory):
    """The factory a ``bind`` line listens with: ``accept-proxy`` reads the PROXY
    protocol header (v1 or v2) first, so that the session sees the real client.
    On a TLS bind the header comes before the handshake: `minilb.net.endpoints.listen`
    wraps the TLS factory itself, so it is left alone here."""
    if bind.accept_proxy and not bind.tls.enabled:
        from minilb.tcp.proxyproto import ProxyHeaderFactory

        return ProxyHeaderFactory(factory)
    return factory


class WorkerService(service.Service):
    name = "minilb-worker"

    def __init__(self, config, reactor, *, log=None, rng: random.Random | None = None):
        self.config = config
        self.reactor = reactor
        self.log = log or _stderr_log
        self.rng = rng or random.Random()
        self.tables = _build_tables(config, reactor)
        self.expiry = TableExpiry(self.tables.values(), reactor)
        self.rules = _compile_rules(config, self.tables)
        self.tracking = _tracking_module(self.tables)
        self.limits = Limits.from_global(config.global_)
        self.active = ActiveCounter()
        self.backends: dict[str, BackendRuntime] = {}
        self.checkers = []
        self.frontends = []  # (proxy, factory)
        self.ports = []
        self._build()

    # ------------------------------------------------------------------ object graph
    def _sink(self, proxy):
        return make_sink(proxy.log_targets, self.config.global_.log_targets, self._schedule)

    def _schedule(self, fn) -> None:
        self.reactor.callLater(0, fn)

    def _errlog(self, message: str) -> None:
        _emit(self.log, "warning", message)

    def _build(self) -> None:
        from minilb.http.healthcheck import HealthChecker

        for px in self.config.proxies:
            if not px.is_backend or px.disabled:
                continue
            states = [ServerState.from_model(s, i + 1) for i, s in enumerate(px.servers)]
            balancer = make_balancer(
                px.balance, states, self.rng, allbackups=px.option("allbackups"), hash_type=px.hash_type
            )
            be = BackendRuntime(px, states, balancer, self.reactor, limits=self.limits)
            be.rules = self.rules.get(px.name)
            self.backends[px.name] = be
            for state in states:
                if state.model is not None and state.model.check and not state.disabled:
                    self.checkers.append(
                        HealthChecker(self.reactor, state, px, self.log, farm=states, rng=self.rng)
                    )
        for px in self.config.proxies:
            if not px.is_frontend or px.disabled:
                continue
            common = dict(
                sink=self._sink(px),
                active=self.active,
                tracking=self.tracking,
                count_bytes=_tables_store_bytes(self.tables),
                errlog=self._errlog,
            )
            rules = self.rules.get(px.name)
            if px.mode == "http":
                factory = FrontendRuntime(
                    px, self.reactor, self.backends, rules, limits=self.limits, **common
                )
            else:
                factory = TcpFrontend(px, self.reactor, self.backends, rules, **common)
            self.frontends.append((px, factory))

    # ------------------------------------------------------------------ service
    def startService(self) -> None:
        from minilb.net.endpoints import listen

        super().startService()
        try:
            for px, factory in self.frontends:
                for bind in px.binds:
                    port = listen(self.reactor, bind, bind_factory(bind, factory))
                    self.ports.append(port)
                    factory.gate.ports.append(port)
        except Exception:
            for port in self.ports:
                port.stopListening()
            self.ports = []
            raise
        for checker in self.checkers:
            checker.start()
        self.expiry.start()

    def stopService(self) -> defer.Deferred:
        super().stopService()
        self.expiry.stop()
        for checker in self.checkers:
            checker.stop()
        stops = [defer.maybeDeferred(port.stopListening) for port in self.ports]
        self.ports = []
        for _, factory in self.frontends:
            factory.stop_accepting()
        done = defer.DeferredList(stops, consumeErrors=True)
        done.addCallback(lambda _: self._drain())
        return done

    def _drain(self) -> defer.Deferred:
        d = defer.Deferred()
        hard = self.config.global_.hard_stop_after
        deadline = self.reactor.seconds() + (hard / 1000.0 if hard else DEFAULT_DRAIN_SECONDS)

        def poll():
            busy = [c for _, f in self.frontends for c in f.connections]
            if not busy or self.reactor.seconds() >= deadline:
                for conn in busy:
                    conn.transport.abortConnection()
                for be in self.backends.values():
                    be.stop()
                flush_all()  # traffic log lines still waiting for their batch write
                d.callback(None)
            else:
                self.reactor.callLater(0.05, poll)

        poll()
        return d
