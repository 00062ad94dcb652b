"""Owns the one timer each proxied connection keeps (client side, server side, tunnel).

A connection changes what it waits for several times per request (headers, body,
server response, keep-alive); creating, cancelling or even resetting a
`DelayedCall` each time costs more than the rest of the request.  `ConnTimer` keeps
one `DelayedCall` and a deadline: moving the deadline later only stores a number,
and when the call fires before the current deadline it re-schedules itself.  Only
a deadline earlier than the scheduled call touches the reactor.  ``kind`` says what
the wait was, so that the owner's callback knows which timeout fired.
"""

from __future__ import annotations


class ConnTimer:
    __slots__ = ("clock", "callback", "call", "call_time", "deadline", "kind")

    def __init__(self, clock, callback):
        self.clock = clock  # anything with callLater and seconds: the reactor, task.Clock
        self.callback = callback  # callback(kind) when a deadline passes
        self.call = None
        self.call_time = 0.0
        self.deadline = 0.0
        self.kind: str | None = None

    def arm(self, seconds: float | None, kind: str) -> None:
        """Fire ``callback(kind)`` in ``seconds`` (None: no timeout for this wait)."""
        if seconds is None:
            self.kind = None
            return
        self.kind = kind
        deadline = self.clock.seconds() + seconds
        self.deadline = deadline
        call = self.call
        if call is None:
            self.call = self.clock.callLater(seconds, self._fire)
            self.call_time = deadline
        elif deadline < self.call_time:
            call.reset(seconds)
            self.call_time = deadline

    def disarm(self) -> None:
        """Nothing to wait for; the pending call (if any) fires as a no-op or is reused."""
        self.kind = None

    def stop(self) -> None:
        """The connection is gone: cancel for good."""
        self.kind = None
        call = self.call
        self.call = None
        if call is not None and not call.called and not call.cancelled:
            call.cancel()

    def close(self) -> None:
        """`stop` for good, and let go of the owner's callback (a bound method: the owner
        and its timer would otherwise keep each other alive until the cycle collector
        runs).  Arming a closed timer is harmless: it fires into nothing."""
        self.stop()
        self.callback = _fired_after_close

    def _fire(self) -> None:
        self.call = None
        kind = self.kind
        if kind is None:
            return
        remaining = self.deadline - self.clock.seconds()
        if remaining > 1e-6:  # the deadline moved later since the call was scheduled
            self.call = self.clock.callLater(remaining, self._fire)
            self.call_time = self.deadline
            return
        self.kind = None
        self.callback(kind)


def _fired_after_close(kind: str) -> None:
    return None
