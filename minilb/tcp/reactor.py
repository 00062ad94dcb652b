"""Owns the event loop a worker may run on: Twisted's epoll reactor with a leaner
per-event dispatch.

Twisted's `EPollReactor.doPoll` wraps every ready socket's ``doRead``/``doWrite`` in
``log.callWithLogger``: a ``logPrefix()`` call, two dict copies and a push/pop of the
legacy log context, about a microsecond and a half per event.  A proxy has two
events per request (client readable, server readable), so on a busy worker that is
a noticeable share of the CPU.  `FastEPollReactor` dispatches directly and keeps
what the wrapper is for: an exception escaping a selectable is logged (with the
selectable's log prefix, computed only then) and the loop goes on.

It also keeps a queue of calls to make "soon" (`callSoon`): at the end of the current
loop turn, or before the next wait when queued from a timer.  That is Twisted's
``callLater(0, ...)`` without a `DelayedCall`, the timer heap and the extra turn; the
lean transports (`minilb.tcp.lean`) connect and close through it.  ``listenTCP``,
``adoptStreamPort`` (TCP) and ``connectTCP`` (to an IPv4 literal) give those lean
transports; everything else is Twisted's.

`install()` installs it as the global reactor; it must run before anything imports
``twisted.internet.reactor`` (the entry point's business, like any reactor choice).
"""

from __future__ import annotations

import collections
import errno
import gc
import socket

from twisted.internet import epollreactor
from twisted.python import log

from minilb.tcp.lean import LeanConnector, LeanPort, lean_connectable


class FastEPollReactor(epollreactor.EPollReactor):
    def __init__(self):
        self._soon: collections.deque = collections.deque()
        super().__init__()

    # -- calls made at the end of the current loop turn ------------------------------
    def callSoon(self, f, *args) -> None:
        """Call ``f(*args)`` at the end of this loop turn (before the next wait);
        an exception is logged like one of a `DelayedCall`."""
        self._soon.append((f, args))

    def timeout(self):
        if self._soon:
            return 0  # calls are waiting: do not sleep in the poll
        return super().timeout()

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

    # -- the lean TCP transports -----------------------------------------------------
    def listenTCP(self, port, factory, backlog=50, interface=""):
        p = LeanPort(port, factory, backlog, interface, self)
        p.startListening()
        return p

    def adoptStreamPort(self, fileDescriptor, addressFamily, factory):
        if addressFamily not in (socket.AF_INET, socket.AF_INET6):
            return super().adoptStreamPort(fileDescriptor, addressFamily, factory)
        p = LeanPort._fromListeningDescriptor(self, fileDescriptor, addressFamily, factory)
        p.startListening()
        return p

    def connectTCP(self, host, port, factory, timeout=30.0, bindAddress=None):
        if not lean_connectable(host, port, bindAddress):
            return super().connectTCP(host, port, factory, timeout, bindAddress)
        c = LeanConnector(host, port, factory, timeout, self)
        c.connect()
        return c

    # -- the loop turn -----------------------------------------------------------------
    def doPoll(self, timeout):
        if self._soon:  # queued by timers since the last turn
            self._runSoon()
            later = self.timeout()  # those calls may have queued more, or armed timers
            if later is not None and (timeout is None or later < timeout):
                timeout = later
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
        for fd, event in events:
            selectable = selectables.get(fd)
            if selectable is None:
                continue
            try:
                dispatch(selectable, fd, event)
            except KeyboardInterrupt:
                raise
            except BaseException:
                try:
                    prefix = selectable.logPrefix()
                except BaseException:
                    prefix = "(buggy logPrefix method)"
                log.err(system=prefix)
        if self._soon:
            self._runSoon()

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
    collected once and frozen out of later collections (``gc.freeze``)."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    reactor.callLater(0, _freeze_start_up)


def _freeze_start_up() -> None:
    gc.collect()
    gc.freeze()
