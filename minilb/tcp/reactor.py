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
    """`install` unless a reactor is already installed (tests, twistd's ``-r``);
    returns whether it installed ours.  For the entry points that run traffic."""
    import sys

    if "twisted.internet.reactor" in sys.modules:
        return False
    install()
    return True
