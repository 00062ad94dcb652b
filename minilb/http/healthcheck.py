"""Owns the health-check timers and connections: the Twisted adapter around `minilb.http.health`.

One `HealthChecker` per server with ``check``: every ``inter`` (``fastinter`` while
the server is changing state, ``downinter`` while it is DOWN) it dials the server
(or its ``port``/``addr`` override, with TLS for ``check-ssl`` or an ``ssl`` server)
and either counts a completed connection as success (TCP check) or sends the
``option httpchk`` request and judges the answer with ``http-check expect``.  Results
feed a `HealthState`; transitions set ``ServerState.up`` and are logged in HAProxy's
words.  The first check of each server is spread at random over ``inter`` as HAProxy
does, so that a farm is not checked all at once.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence

import attrs
from twisted.internet import error, protocol
from twisted.python.failure import Failure

from minilb.config.model import Address, Proxy
from minilb.http.balance import ServerState
from minilb.http.health import (
    DOWN,
    L4_OK,
    L4_TIMEOUT,
    L7_TIMEOUT,
    CheckResult,
    Expectation,
    HealthState,
    HttpCheckReader,
    build_check_request,
    l4_failure,
    no_server_message,
    transition_message,
)
from minilb.net.endpoints import connect_address, sni_literal

#: connect(address, factory, timeout_s, tls, sni, port) -> Deferred[protocol]
Connector = Callable[..., object]


def emit(log, level: str, message: str) -> None:
    """Write ``message`` to ``log``: a callable ``log(level, message)`` or a
    twisted.logger.Logger (``warning`` → ``warn``)."""
    if log is None:
        return
    if hasattr(log, "emit") and hasattr(log, "warn"):
        method = {"warning": log.warn, "alert": log.critical, "notice": log.info}.get(level, log.info)
        method("{message}", message=message)
    else:
        log(level, message)


def check_address(server: ServerState) -> Address:
    """Where checks go: the server address, or its ``addr`` override."""
    model = server.model
    if model is not None and model.check_addr:
        host = model.check_addr
        family = "ipv6" if ":" in host else "ipv4"
        return Address(family, host, server.address.port if server.address else None, text=host)
    assert server.address is not None
    return server.address


def describe_connect_failure(failure: Failure) -> CheckResult:
    exc = failure.value
    if isinstance(exc, error.TimeoutError):
        return L4_TIMEOUT
    if isinstance(exc, error.ConnectionRefusedError):
        return l4_failure("Connection refused")
    os_error = getattr(exc, "osError", None)
    if isinstance(os_error, int):
        return l4_failure(os.strerror(os_error))
    text = exc.args[0] if getattr(exc, "args", None) else exc.__class__.__name__
    return l4_failure(str(text))


class _HttpCheckProtocol(protocol.Protocol):
    def __init__(self, request: bytes, reader: HttpCheckReader, done: Callable[[CheckResult], None]):
        self.request = request
        self.reader = reader
        self.done = done
        self.finished = False

    def connectionMade(self):
        self.transport.write(self.request)

    def dataReceived(self, data):
        if self.finished:
            return
        verdict = self.reader.feed(data)
        if verdict is not None:
            self.finish(verdict)
            self.transport.loseConnection()

    def connectionLost(self, reason=None):
        if not self.finished:
            self.finish(self.reader.eof())

    def finish(self, verdict: CheckResult) -> None:
        self.finished = True
        self.done(verdict)


class HealthChecker:
    """Periodic checks of one server.

    ``farm`` is every `ServerState` of the backend (to count the servers left in log
    lines); ``on_change(server, up)`` is called after each transition; ``connect``
    replaces the real dialer in tests.
    """

    def __init__(
        self,
        reactor,
        server: ServerState,
        proxy: Proxy,
        log=None,
        farm: Sequence[ServerState] | None = None,
        rng: random.Random | None = None,
        on_change: Callable[[ServerState, bool], None] | None = None,
        connect: Connector | None = None,
    ):
        self.reactor = reactor
        self.server = server
        self.proxy = proxy
        self.log = log
        self.farm = list(farm) if farm is not None else [server]
        self.rng = rng or random.Random()
        self.on_change = on_change
        self._connect = connect or self._real_connect
        model = server.model
        self.inter = model.inter if model is not None else 2000
        self.fastinter = model.fastinter if model is not None else None
        self.downinter = model.downinter if model is not None else None
        self.state = HealthState(
            model.rise if model else 2, model.fall if model else 3, initially_up=server.up
        )
        # `timeout check` set: connect within min(timeout connect, inter), then read
        # within `timeout check`; unset: the whole check (connect + read) within inter.
        check_timeout = proxy.timeouts.check
        if check_timeout:
            self.connect_timeout_ms = min(proxy.timeouts.connect or self.inter, self.inter)
            self.read_timeout_ms = check_timeout
            self.read_timeout_from_connect = True
        else:
            self.connect_timeout_ms = self.read_timeout_ms = self.inter
            self.read_timeout_from_connect = False
        # checks inherit the server's `ssl` unless `port`/`addr` send them elsewhere;
        # `check-ssl` forces TLS (with the server's TLS settings) in every case
        self.use_tls = bool(
            model is not None
            and (
                model.check_ssl
                or (server.tls.enabled and model.check_port is None and model.check_addr is None)
            )
        )
        self.port = model.check_port if model is not None and model.check_port else None
        self.address = check_address(server)
        chk = proxy.httpchk
        self.expectation = Expectation(chk.expect) if chk is not None else None
        self.request = (
            build_check_request(chk.method, chk.uri, chk.version, chk.host, chk.headers)
            if chk is not None
            else b""
        )
        self._call = None
        self._running = False
        self._in_flight = None
        self._pending = None
        self.last_result: CheckResult | None = None  # for `show stat`: .status, .code, .info
        self.last_duration_ms = 0
        self.checks_done = 0

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._running or self.server.disabled:
            return
        self._running = True
        self._schedule(int(self.rng.random() * self.inter))

    def stop(self) -> None:
        self._running = False
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        pending, self._pending = self._pending, None
        if pending is not None and not pending.called:
            pending.cancel()  # a connect still in progress
        if self._in_flight is not None:
            transport = getattr(self._in_flight, "transport", None)
            self._in_flight = None
            if transport is not None:
                transport.abortConnection()

    def _schedule(self, delay_ms: int) -> None:
        if self._running:
            self._call = self.reactor.callLater(delay_ms / 1000.0, self._run_check)

    # ------------------------------------------------------------------ one check

    def _real_connect(self, address, factory, timeout_s, tls, sni, port):
        return connect_address(self.reactor, address, factory, timeout_s, tls=tls, sni=sni, port=port)

    def _run_check(self) -> None:
        self._call = None
        started = self.reactor.seconds()
        state = {"done": False, "timer": None}

        def done(result: CheckResult) -> None:
            if state["done"]:
                return
            state["done"] = True
            timer = state["timer"]
            if timer is not None and timer.active():
                timer.cancel()
            self._in_flight = None
            self._pending = None
            if self._running:  # a check cut short by stop() is not a result
                self._finish(result, round((self.reactor.seconds() - started) * 1000))

        if self.expectation is None:
            factory = protocol.Factory.forProtocol(protocol.Protocol)
        else:
            reader = HttpCheckReader(self.expectation)
            request = self.request
            factory = protocol.Factory()
            factory.protocol = lambda: _HttpCheckProtocol(request, reader, done)
        factory.noisy = False  # no "Starting factory" line per check

        def connected(proto):
            if state["done"]:
                proto.transport.abortConnection()
                return
            if self.expectation is None:
                proto.transport.loseConnection()
                done(L4_OK)
                return
            self._in_flight = proto

            def read_timeout():
                state["timer"] = None
                if not state["done"]:
                    done(L7_TIMEOUT)
                    proto.transport.abortConnection()

            remaining = self.read_timeout_ms / 1000.0
            if not self.read_timeout_from_connect:
                remaining -= self.reactor.seconds() - started
            state["timer"] = self.reactor.callLater(max(remaining, 0.0), read_timeout)

        def failed(failure: Failure):
            done(describe_connect_failure(failure))

        tls = attrs.evolve(self.server.tls, enabled=True) if self.use_tls else None
        try:
            d = self._connect(
                self.address, factory, self.connect_timeout_ms / 1000.0, tls, self._sni(), self.port
            )
        except Exception as e:  # a bad address: report it as a layer-4 problem, keep checking
            done(l4_failure(str(e)))
            return
        self._pending = d
        d.addCallbacks(connected, failed)

    def _sni(self) -> str | None:
        return sni_literal(self.server.tls.sni) if self.use_tls else None

    def _finish(self, result: CheckResult, duration_ms: int) -> None:
        self.last_result = result
        self.last_duration_ms = duration_ms
        self.checks_done += 1
        transition = self.state.record(result.success)
        if transition is not None:
            self.server.up = self.state.up
            active = sum(1 for s in self.farm if s.up and not s.backup)
            backups = sum(1 for s in self.farm if s.up and s.backup)
            message = transition_message(
                self.proxy.name,
                self.server.name,
                self.server.backup,
                transition,
                result,
                duration_ms,
                active,
                backups,
                self.server.cur_conns,
            )
            emit(self.log, "warning", message)
            if transition == DOWN and active == 0 and backups == 0:
                emit(self.log, "alert", no_server_message(self.proxy.name))
            if self.on_change is not None:
                self.on_change(self.server, self.state.up)
        self._schedule(self.state.interval_ms(self.inter, self.fastinter, self.downinter))
