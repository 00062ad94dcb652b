"""Owns the event loop a worker may run on: Twisted's epoll reactor with a leaner
per-event dispatch.

Twisted's `EPollReactor.doPoll` wraps every ready socket's ``doRead``/``doWrite`` in
``log.callWithLogger``: a ``logPrefix()`` call, two dict copies and a push/pop of the
legacy log context, about a microsecond and a half per event.  A proxy has two
events per request (client readable, server readable), so on a busy worker that is
a noticeable share of the CPU.  `FastEPollReactor` dispatches directly and keeps
what the wrapper is for: an exception escaping a selectable is logged (with the
selectable's log prefix, computed only then) and the loop goes on.

A readable plain TCP connection (an ``EPOLLIN`` event alone, on a `tcp.Connection`
that reads as Twisted's does) is read in the loop itself: ``recv`` and the protocol's
``dataReceived``, without the three frames of ``_doReadOrWrite``, ``doRead`` and
``_dataReceived`` around them; the end of the stream, a failed ``recv`` and an
exception of ``dataReceived`` end the connection as they do there.  Every other
event takes Twisted's path.

`install()` installs it as the global reactor; it must run before anything imports
``twisted.internet.reactor`` (the entry point's business, like any reactor choice).
"""

from __future__ import annotations

import errno
import select
import sys

from twisted.internet import epollreactor, main, tcp
from twisted.python import log

_EPOLLIN = select.EPOLLIN

#: selectable class -> whether its readable events may skip Twisted's dispatch
_PLAIN_READERS: dict[type, bool] = {}


def _reads_plainly(cls: type) -> bool:
    """A `tcp.Connection` whose read is Twisted's own (recv, then the protocol's
    ``dataReceived``): not a subclass that reads another way."""
    plain = (
        issubclass(cls, tcp.Connection)
        and cls.doRead is tcp.Connection.doRead
        and cls._dataReceived is tcp.Connection._dataReceived
    )
    _PLAIN_READERS[cls] = plain
    return plain


class FastEPollReactor(epollreactor.EPollReactor):
    """The loop also keeps a queue of calls to make soon (`callSoon`): right after the
    current poll turn's events are dispatched (before the timers, and before the
    next wait when queued by a timer).  That is Twisted's ``callLater(0, ...)``
    without a `DelayedCall`, the timer heap and an extra turn; the lean transports
    (`minilb.tcp.lean`) connect and close through it.  ``listenTCP``,
    ``adoptStreamPort`` (TCP) and ``connectTCP`` (to an IPv4 literal) give those
    lean transports; everything else is Twisted's."""

    def __init__(self):
        from collections import deque

        from minilb.tcp import lean

        self._soon: deque = deque()
        self._lean = lean
        super().__init__()

    # -- calls made soon ---------------------------------------------------------------
    def callSoon(self, f, *args) -> None:
        """Call ``f(*args)`` once this loop turn's events are dispatched; an exception
        is logged like one of a `DelayedCall`."""
        self._soon.append((f, args))

    def timeout(self):
        if self._soon:
            return 0  # calls are waiting: do not sleep in the poll
        return super().timeout()

    def runUntilCurrent(self) -> None:
        if self._soon:  # what the last turn's events queued, before the timers
            self._runSoon()
        super().runUntilCurrent()

    def _runSoon(self) -> None:
        soon = self._soon
        for _ in range(len(soon)):  # what is queued meanwhile waits for the next turn
            f, args = soon.popleft()
            try:
                f(*args)
            except KeyboardInterrupt:
                raise
            except BaseException:
                log.err(None, "Unhandled error in a call made soon")

    # -- the lean TCP transports -------------------------------------------------------
    def listenTCP(self, port, factory, backlog=50, interface=""):
        p = self._lean.LeanPort(port, factory, backlog, interface, self)
        p.startListening()
        return p

    def adoptStreamPort(self, fileDescriptor, addressFamily, factory):
        import socket

        if addressFamily not in (socket.AF_INET, socket.AF_INET6):
            return super().adoptStreamPort(fileDescriptor, addressFamily, factory)
        p = self._lean.LeanPort._fromListeningDescriptor(self, fileDescriptor, addressFamily, factory)
        p.startListening()
        return p

    def connectTCP(self, host, port, factory, timeout=30.0, bindAddress=None):
        lean = self._lean
        if not lean.lean_connectable(host, port, bindAddress):
            return super().connectTCP(host, port, factory, timeout, bindAddress)
        c = lean.LeanConnector(host, port, factory, timeout, self)
        c.connect()
        return c

    # -- the poll turn -----------------------------------------------------------------
    def doPoll(self, timeout):
        if timeout is None:
            timeout = -1  # wait indefinitely
        try:
            events = self._poller.poll(timeout, len(self._selectables))
        except OSError as err:
            if err.errno == errno.EINTR:
                return
            raise
        selectables = self._selectables
        dispatch = self._doReadOrWrite
        plain = _PLAIN_READERS
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                if event == _EPOLLIN and (
                    plain.get(selectable.__class__) or _reads_plainly(selectable.__class__)
                ):
                    # what _doReadOrWrite, doRead and _dataReceived do for this event
                    try:
                        data = selectable.socket.recv(selectable.bufferSize)
                    except OSError as se:
                        if se.args[0] != errno.EWOULDBLOCK:
                            self._disconnectSelectable(selectable, main.CONNECTION_LOST, True)
                        continue
                    if not data:
                        self._disconnectSelectable(selectable, main.CONNECTION_DONE, True)
                        continue
                    try:
                        selectable.protocol.dataReceived(data)
                    except BaseException:
                        why = sys.exc_info()[1]
                        log.err()
                        self._disconnectSelectable(selectable, why, False)
                    continue
                dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                try:
                    prefix = selectable.logPrefix()
                except BaseException:
                    prefix = "(buggy logPrefix method)"
                log.err(system=prefix)

    doIteration = doPoll


def install() -> FastEPollReactor:
    """Install `FastEPollReactor` as the global reactor and return it."""
    from twisted.internet.main import installReactor

    reactor = FastEPollReactor()
    installReactor(reactor)
    return reactor


def install_if_unset() -> bool:
    """`install` unless a reactor is already installed (tests, twistd's ``-r``), and
    `tune_collector` for it; returns whether it installed ours.  For the entry points
    that run traffic."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        return False
    tune_collector(install())
    return True


#: allocations between two collections of the youngest generation in a process that
#: carries traffic (CPython's default is 700)
YOUNG_THRESHOLD = 20000


def tune_collector(reactor) -> None:
    """Tune Python's cycle collector for a process that carries traffic.

    A closed connection is freed by reference counting (its protocol, parser, timer
    and transport let go of each other), so what the collector finds is the objects
    of the connections in flight, alive.  With the default threshold it walks them
    every dozen new connections and promotes them to older generations, whose
    collections then walk them again, and a full collection walks every object of
    the configuration, tables and modules too: a tenth of the CPU of a worker taking
    new connections.  Here the youngest generation collects after `YOUNG_THRESHOLD`
    allocations (far more than a worker holds in flight; a cycle left by some other
    path waits at most that long), and once the loop runs, what start-up built is
    frozen out of later collections (``gc.freeze``).  No full collection comes before
    the freeze: it walks every start-up object (15-30 ms) to free a few hundred, and
    a new worker's start-up is on the path of a reload's hand-over (it delayed the
    worker's ``ready``, or its answer to the old worker's connection)."""
    import gc

    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    reactor.callLater(0, gc.freeze)
