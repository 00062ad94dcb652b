"""Owns the event loop a worker may run on: Twisted's epoll reactor with a leaner
per-event dispatch.

Twisted's `EPollReactor.doPoll` wraps every ready socket's ``doRead``/``doWrite`` in
``log.callWithLogger``: a ``logPrefix()`` call, two dict copies and a push/pop of the
legacy log context, about a microsecond and a half per event.  A proxy has two
events per request (client readable, server readable), so on a busy worker that is
a noticeable share of the CPU.  `FastEPollReactor` dispatches directly and keeps
what the wrapper is for: an exception escaping a selectable is logged (with the
selectable's log prefix, computed only then) and the loop goes on.

`install()` installs it as the global reactor; it must run before anything imports
``twisted.internet.reactor`` (the entry point's business, like any reactor choice).
"""

from __future__ import annotations

import errno

from twisted.internet import epollreactor
from twisted.python import log


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
